"""Authenticators for a lab's private Binder: only members log in, each launches with their own
token. Entry points: lab-github, lab-gitlab, lab-oidc (c.JupyterHub.authenticator_class)."""

from binderspawner.auth.base import LabAuthenticatorMixin, attach_member_credentials
from binderspawner.auth.github import LabGitHubAuthenticator
from binderspawner.auth.gitlab import LabGitLabAuthenticator
from binderspawner.auth.oidc import LabOIDCAuthenticator

__all__ = ["LabAuthenticatorMixin", "LabGitHubAuthenticator", "LabGitLabAuthenticator",
           "LabOIDCAuthenticator", "attach_member_credentials"]
