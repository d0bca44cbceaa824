"""Watch semantics: streaming, resume from a resourceVersion, 410 Gone, bookmarks, selectors."""

from __future__ import annotations

import threading
import time

from tests.kube.rest import Rest

CM = "/api/v1/namespaces/default/configmaps"


def _collect(rest: Rest, path: str, out: list[dict], timeout: float = 10) -> threading.Thread:
    def run() -> None:
        for ev in rest.watch(path, timeout=timeout):
            out.append(ev)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    time.sleep(0.3)
    return th


def test_watch_streams_changes_and_resumes(kube_server) -> None:
    rest = Rest.admin(kube_server)
    _, a = rest.post(CM, {"metadata": {"name": "a"}})
    events: list[dict] = []
    th = _collect(
        rest, f"{CM}?watch=true&timeoutSeconds=2&resourceVersion={a['metadata']['resourceVersion']}", events
    )
    rest.patch(f"{CM}/a", {"data": {"x": "1"}})
    rest.post(CM, {"metadata": {"name": "b"}})
    rest.delete(f"{CM}/a")
    th.join(5)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "a"),
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)
    # resuming from the first event's version replays exactly what came after it
    replay = list(rest.watch(f"{CM}?watch=true&timeoutSeconds=1&resourceVersion={rvs[0]}"))
    assert [e["type"] for e in replay] == ["ADDED", "DELETED"]


def test_watch_without_version_starts_with_current_state(kube_server) -> None:
    rest = Rest.admin(kube_server)
    rest.post(CM, {"metadata": {"name": "existing"}})
    events = list(rest.watch(f"{CM}?watch=true&timeoutSeconds=1"))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "existing"),
        ("ADDED", "kube-root-ca.crt"),
    ]


def test_too_old_resource_version_is_410_gone(kube_server) -> None:
    rest = Rest.admin(kube_server)
    _, a = rest.post(CM, {"metadata": {"name": "a"}})
    rest.patch(f"{CM}/a", {"data": {"x": "1"}})
    kube_server.compact()
    events = list(rest.watch(f"{CM}?watch=true&resourceVersion={a['metadata']['resourceVersion']}"))
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


def test_bookmarks_only_when_allowed(kube_server) -> None:
    rest = Rest.admin(kube_server)
    _, lst = rest.get(CM)
    rv = lst["metadata"]["resourceVersion"]
    with_marks = list(
        rest.watch(f"{CM}?watch=true&timeoutSeconds=2&allowWatchBookmarks=true&resourceVersion={rv}")
    )
    assert with_marks and all(e["type"] == "BOOKMARK" for e in with_marks)
    assert set(with_marks[0]["object"]["metadata"]) == {"resourceVersion"}
    assert list(rest.watch(f"{CM}?watch=true&timeoutSeconds=1&resourceVersion={rv}")) == []


def test_label_selector_watch_sees_objects_enter_and_leave(kube_server) -> None:
    rest = Rest.admin(kube_server)
    _, lst = rest.get(CM)
    events: list[dict] = []
    th = _collect(
        rest,
        f"{CM}?watch=true&timeoutSeconds=2&labelSelector=app%3Dx"
        f"&resourceVersion={lst['metadata']['resourceVersion']}",
        events,
    )
    rest.post(CM, {"metadata": {"name": "m", "labels": {"app": "y"}}})
    rest.patch(f"{CM}/m", {"metadata": {"labels": {"app": "x"}}})
    rest.patch(f"{CM}/m", {"metadata": {"labels": {"app": "z"}}})
    th.join(5)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_restart_watches_ends_open_streams(kube_server) -> None:
    rest = Rest.admin(kube_server)
    events: list[dict] = []
    done = threading.Event()

    def run() -> None:
        for ev in rest.watch(f"{CM}?watch=true&resourceVersion=0", timeout=30):
            events.append(ev)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    time.sleep(0.3)
    kube_server.restart_watches()
    assert done.wait(3), "the watch stream did not end"


def test_namespaced_watch_ignores_other_namespaces(kube_server) -> None:
    rest = Rest.admin(kube_server)
    rest.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    _, lst = rest.get("/api/v1/configmaps")
    events: list[dict] = []
    th = _collect(
        rest, f"{CM}?watch=true&timeoutSeconds=1&resourceVersion={lst['metadata']['resourceVersion']}", events
    )
    rest.post("/api/v1/namespaces/other/configmaps", {"metadata": {"name": "elsewhere"}})
    th.join(5)
    assert events == []
