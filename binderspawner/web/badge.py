"""The launch badge READMEs embed: a small flat SVG drawn for this project (no external assets)."""

BADGE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="110" height="20" role="img" aria-label="launch: binder">
<title>launch: binder</title>
<linearGradient id="shine" x2="0" y2="100%"><stop offset="0" stop-color="#fff" stop-opacity=".15"/>
<stop offset="1" stop-opacity=".1"/></linearGradient>
<clipPath id="round"><rect width="110" height="20" rx="3" fill="#fff"/></clipPath>
<g clip-path="url(#round)">
<rect width="64" height="20" fill="#4a4a4a"/>
<rect x="64" width="46" height="20" fill="#d9561e"/>
<rect width="110" height="20" fill="url(#shine)"/>
</g>
<g fill="none" stroke="#f3a33c" stroke-width="1.6">
<circle cx="10" cy="7" r="3.2"/><circle cx="10" cy="13" r="3.2" stroke="#e66581"/><path d="M6 10h8" stroke="#5fb4e6"/>
</g>
<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">
<text x="38" y="14" fill="#111" fill-opacity=".3">launch</text><text x="38" y="13">launch</text>
<text x="87" y="14" fill="#111" fill-opacity=".3">binder</text><text x="87" y="13">binder</text>
</g>
</svg>
"""
