"""builders/buildpacks"""
