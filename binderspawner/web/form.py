"""The spawn form: repository, ref and path, with errors next to their field and the launch link and
badge snippets for what was typed (like mybinder.org's front page).

The server checks every field in ``options_from_form`` (no network) and raises a LaunchError naming
the field. JupyterHub then re-renders the form with the message at the top; it renders the form from
the user's spawner, which cannot see the error, so ``remember_error`` keeps it for the user's next
render (in this hub process) and the form shows it under its field with what was typed filled in.
The form is the Jinja template templates/binder_form.html (after kubespawner's form.html). Its
script checks the repository against the patterns the hub's providers give (``grammar_for``, from
their configured hosts), so the browser's checks are the server's, and computes the snippets.
(JupyterHub 6.1's spawn page never shows an error's HTML message: its template and its handler name
that variable differently, so the field is not passed that way.)
"""

import html
import json
import os

import jinja2

from binderspawner.launch.options import MAX_REF_LENGTH, MAX_REPO_LENGTH, MAX_URLPATH_LENGTH
from binderspawner.providers import DEFAULT_PROVIDERS

FIELDS = ("repo", "ref", "urlpath")
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)


def grammar_for(spawner):
    """The launch-link grammar of the spawner's providers (configured hosts), as the form gets it:
    one dict per link prefix (the first provider with a prefix, as links.py reads links)."""
    classes = getattr(spawner, "provider_classes", None) or DEFAULT_PROVIDERS
    grammar, seen = [], set()
    for cls in classes:
        provider = cls(parent=spawner) if hasattr(spawner, "config") else cls()
        if provider.prefix and provider.prefix not in seen:
            seen.add(provider.prefix)
            grammar.append(provider.link_grammar().as_dict())
    return grammar


_errors = {}  # user name -> the field error their next form render shows


def remember_error(username, error, values):
    """Keep ``error`` (a LaunchError) for ``username``'s next form render."""
    field = error.field if error.field in FIELDS else "repo"
    typed = {k: v for k, v in (values or {}).items() if k in FIELDS and isinstance(v, str)}
    _errors[username] = {"field": field, "message": str(error), "values": typed}


def render_form(spawner):
    """options_form for the spawner: templates/binder_form.html with this hub's base URL for the
    snippets, its providers' grammar for the browser's checks, and the user's last field error if
    the form is shown again because of it."""
    base = getattr(getattr(spawner, "hub", None), "base_url", None) or "/hub/"
    user = getattr(getattr(spawner, "user", None), "name", None)
    error = _errors.pop(user, None) if user else None
    from binderspawner.homes import form_field as home_field  # persistent homes' 'start fresh'

    return _templates.get_template("binder_form.html").render(
        base=base.rstrip("/") + "/", error_json=json.dumps(error), grammar=grammar_for(spawner),
        max_lengths={"repo": MAX_REPO_LENGTH, "ref": MAX_REF_LENGTH, "urlpath": MAX_URLPATH_LENGTH}
    ) + home_field(spawner)


def with_field_html(error, values):
    """Give a LaunchError an HTML message naming its field (for pages that show HTML messages)."""
    field = error.field if error.field in FIELDS else "repo"
    typed = {k: v for k, v in (values or {}).items() if k in FIELDS and isinstance(v, str)}
    error.jupyterhub_html_message = (
        f'<span data-binder-field="{field}" '
        f'data-binder-values="{html.escape(json.dumps(typed), quote=True)}">'
        f"{html.escape(str(error))}</span>"
    )
    return error
