"""What users read when a launch fails, in one place so the messages read alike (pure).

Every message starts with one line a non-expert can act on (what failed, what to change), then
the details (exit codes, log lines, git's reason) on the lines after it.
"""


def with_details(first_line, details=""):
    """The actionable line, then the details (if any) after a blank line."""
    details = (details or "").strip("\n")
    return f"{first_line}\n\n{details}" if details else first_line


# launch


def ref_invalid(ref, problem):
    return (f"The ref {ref!r} is not valid: {problem}. Give a branch name, a tag or a commit sha "
            "as git accepts it.")


def urlpath_invalid(name, value, problem):
    return (f"The {name} {value!r} is not valid: {problem}. Use a path inside the server, such as "
            "'lab/tree/index.ipynb'.")


def ref_not_found(repository, ref):
    return (f"{repository} has no branch, tag or commit {ref!r}. Check the spelling, or give a full "
            "commit sha.")


def repository_not_found(repository):
    # Missing and private repositories get the same answer, so private names do not leak.
    return (f"Repository {repository} was not found, or you do not have access to it. Check the URL, "
            "or log in with an account that can read it.")


def host_unreachable(repository):
    return f"Could not reach the host of {repository}. Check the URL, or try again later."


def commit_not_found(repository, sha):
    return (f"{repository} has no commit {sha!r}. Check the sha (it may be from another repository or "
            "a branch that was force-pushed), or give a branch or tag.")


def _tail(lines):
    return "\n".join(line for line in lines if line.strip())


def server_exited(repository, exit_code, last_lines):
    """The container stopped before the server answered: the repository's start-up is broken."""
    if exit_code is None:
        hint = "its container disappeared; launch it again, and tell the hub admin if it happens again"
    elif exit_code == 127:
        hint = ("the image has no 'jupyterhub-singleuser' command: install the 'jupyterhub' "
                "package in the repository's environment (e.g. in requirements.txt)")
    else:
        hint = ("check the repository's 'start' script, Dockerfile CMD/ENTRYPOINT or environment, "
                "which must end by running the command they are given")
    details = f"Exit code {exit_code}."
    if last_lines:
        details += f" Last lines of the server's output:\n{_tail(last_lines)}"
    else:
        details += " The server wrote nothing."
    return with_details(f"The server of {repository} stopped before it was ready (exit code "
                        f"{exit_code}): {hint}.", details)


def server_not_started(repository, reason):
    """Docker refused to start the container (e.g. its command does not exist in the image)."""
    if "executable file not found" in reason or "no such file or directory" in reason:
        hint = ("the image has no 'jupyterhub-singleuser' command: install the 'jupyterhub' package "
                "in the repository's environment (e.g. in requirements.txt)")
    else:
        hint = "check the repository's Dockerfile or start-up files"
    return with_details(f"The server of {repository} could not be started: {hint}.",
                        f"Docker said: {reason}")


def server_silent(repository, timeout):
    """The container runs but nothing answers: the start-up hangs or listens elsewhere."""
    return with_details(
        f"The server of {repository} did not answer within {timeout:g} s: its 'start' script or "
        "Dockerfile CMD must run the command it is given (jupyterhub-singleuser) without waiting "
        "for anything first.", "The container was running but did not answer on its port.")


def lfs_not_fetched(repository, reason):
    return with_details(
        f"The Git LFS files of {repository} could not be downloaded, so they hold LFS pointer text "
        "instead of their content: check that the LFS server is reachable and the files were pushed "
        "to it (git lfs push --all).", reason)
