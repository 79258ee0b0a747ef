"""The spawn form: repository, ref and path, with errors next to their field and the launch link and
badge snippets for what was typed (like mybinder.org's front page).

The server checks every field in ``options_from_form`` (no network) and raises a LaunchError naming
the field. JupyterHub then re-renders the form with the message at the top; it renders the form from
the user's spawner, which cannot see the error, so ``remember_error`` keeps it for the user's next
render (in this hub process) and the form shows it under its field with what was typed filled in.
The script also checks the obvious mistakes before the form is sent, and computes the snippets in
the browser. (JupyterHub 6.1's spawn page never shows an error's HTML message: its template and its
handler name that variable differently, so the field is not passed that way.)
"""

import html
import json

FIELDS = ("repo", "ref", "urlpath")

FORM = """
<div id="binder-form" data-error="__ERROR__">
<div class="form-group mb-2">
  <label for="binder-repo" class="form-label">Repository: a Git URL, or a Binder spec such as gh/org/repo/main</label>
  <input class="form-control" id="binder-repo" name="repo" required autocomplete="off"
         placeholder="https://example.org/org/repo.git">
  <div class="invalid-feedback" id="binder-repo-error"></div>
</div>
<div class="form-group mb-2">
  <label for="binder-ref" class="form-label">Branch, tag or commit <small>(optional: the default branch)</small></label>
  <input class="form-control" id="binder-ref" name="ref" placeholder="main" autocomplete="off">
  <div class="invalid-feedback" id="binder-ref-error"></div>
</div>
<div class="form-group mb-2">
  <label for="binder-urlpath" class="form-label">Path to open <small>(optional)</small></label>
  <input class="form-control" id="binder-urlpath" name="urlpath" placeholder="lab/tree/index.ipynb"
         autocomplete="off">
  <div class="invalid-feedback" id="binder-urlpath-error"></div>
</div>
<details id="binder-share" class="mb-3">
  <summary>Launch link and badge for this repository</summary>
  <label class="form-label" for="binder-link">Launch link</label>
  <input class="form-control" id="binder-link" readonly>
  <label class="form-label" for="binder-md">Markdown</label>
  <textarea class="form-control" id="binder-md" rows="2" readonly></textarea>
  <label class="form-label" for="binder-rst">reStructuredText</label>
  <textarea class="form-control" id="binder-rst" rows="2" readonly></textarea>
  <label class="form-label" for="binder-html">HTML</label>
  <textarea class="form-control" id="binder-html" rows="2" readonly></textarea>
  <p class="mt-1"><img id="binder-badge" alt="Binder badge" src="__BASE__badge_logo.svg"></p>
</details>
</div>
<script>
(function () {
  var base = window.location.origin + "__BASE__";
  var SPEC = /^(gh|gl|git|gist|zenodo|figshare|dataverse|hydroshare|ckan)\\/\\S+$/;
  var URL_RE = /^(https?|git):\\/\\/[^\\s\\/@]+\\/\\S+$/;
  // git-check-ref-format's rules (the hub checks them too, with git's reason)
  var REF_RE = /^(?!-)(?!.*(\\.\\.|@\\{|\\/\\/|\\/\\.|\\.lock\\/|\\.lock$|[.\\/]$))(?!\\.)(?!\\/)(?!@$)[^\\x00-\\x20\\x7f~^:?*\\[\\\\]+$/;
  function field(name) { return document.getElementById("binder-" + name); }
  function showError(name, message) {
    var input = field(name), box = field(name + "-error");
    input.classList.add("is-invalid");
    box.textContent = message;
    box.style.display = "block";
  }
  function clearErrors() {
    ["repo", "ref", "urlpath"].forEach(function (name) {
      field(name).classList.remove("is-invalid");
      field(name + "-error").textContent = "";
      field(name + "-error").style.display = "";
    });
  }
  function check() {
    var repo = field("repo").value.trim(), ref = field("ref").value.trim();
    var urlpath = field("urlpath").value.trim();
    if (!repo) return ["repo", "Give a repository: a Git URL such as https://example.org/org/repo.git."];
    if (!SPEC.test(repo) && !URL_RE.test(repo))
      return ["repo", "This is not a repository URL: use https://, http:// or git:// with a host and a path, " +
                      "or a Binder spec such as gh/org/repo/main."];
    if (ref && !REF_RE.test(ref))
      return ["ref", "This is not a ref git accepts (no spaces, ~ ^ : ? * [ \\\\ or '..'): give a branch, tag or commit sha."];
    if (urlpath && (/[\\x00-\\x1f\\x7f]|\\\\|:\\/\\//.test(urlpath)))
      return ["urlpath", "Give a path inside the server, such as lab/tree/index.ipynb."];
    return null;
  }
  function launchPath() {
    var repo = field("repo").value.trim(), ref = field("ref").value.trim();
    var urlpath = field("urlpath").value.trim().replace(/^\\/+/, "");
    var path = SPEC.test(repo) ? "v2/" + repo
      : "v2/git/" + encodeURIComponent(repo) + "/" + (ref ? encodeURIComponent(ref).replace(/%2F/g, "/") : "HEAD");
    if (urlpath) path += "?urlpath=" + encodeURIComponent(urlpath).replace(/%2F/g, "/");
    return path;
  }
  function update() {
    var repo = field("repo").value.trim();
    var link = repo ? base + launchPath() : "", badge = base + "badge_logo.svg";
    field("link").value = link;
    field("md").value = link ? "[![Binder](" + badge + ")](" + link + ")" : "";
    field("rst").value = link ? ".. image:: " + badge + "\\n   :target: " + link : "";
    var a = document.createElement("a"), img = document.createElement("img");
    a.href = link; img.src = badge; img.alt = "Binder"; a.appendChild(img);
    field("html").value = link ? a.outerHTML : "";
  }
  // A server-side error for one field: show it under that field and restore what was typed.
  var error = JSON.parse(field("form").getAttribute("data-error") || "null");
  if (error) {
    Object.keys(error.values).forEach(function (name) { if (field(name)) field(name).value = error.values[name]; });
    if (field(error.field)) showError(error.field, error.message);
    var top = document.querySelector(".spawn-error-msg");
    if (top) top.style.display = "none";  // shown under the field instead
  }
  ["repo", "ref", "urlpath"].forEach(function (name) { field(name).addEventListener("input", update); });
  update();
  var form = field("form").closest("form");
  if (form) form.addEventListener("submit", function (e) {
    clearErrors();
    var problem = check();
    if (problem) {
      e.preventDefault();
      e.stopImmediatePropagation();  // keep the page's own handler from disabling the button
      showError(problem[0], problem[1]);
    }
  });
})();
</script>
"""


_errors = {}  # user name -> the field error their next form render shows


def remember_error(username, error, values):
    """Keep ``error`` (a LaunchError) for ``username``'s next form render."""
    field = error.field if error.field in FIELDS else "repo"
    typed = {k: v for k, v in (values or {}).items() if k in FIELDS and isinstance(v, str)}
    _errors[username] = {"field": field, "message": str(error), "values": typed}


def render_form(spawner):
    """options_form for the spawner: the form with this hub's base URL for the snippets, and the
    user's last field error if the form is shown again because of it."""
    base = getattr(getattr(spawner, "hub", None), "base_url", None) or "/hub/"
    user = getattr(getattr(spawner, "user", None), "name", None)
    error = _errors.pop(user, None) if user else None
    return (FORM.replace("__BASE__", html.escape(base.rstrip("/") + "/"))
            .replace("__ERROR__", html.escape(json.dumps(error), quote=True)))


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
