"""The shape of the package: libraries below, command lines on top, no import cycles, and one
place that builds the train step."""

import ast
import pathlib

from conftest import ROOT, run_python

PACKAGE = ROOT / "gan_jax"
# Third-party imports a library may defer: TensorFlow takes seconds to import, and only the tfds
# source needs it; torch is optional (reading pytorch-fid's .pth weights); scipy.linalg takes
# 0.2 s, and only FID needs it.
DEFERRABLE = {"tensorflow_datasets", "tensorflow", "torch", "scipy"}


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_command(tree: ast.Module) -> bool:
  return any(
    isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body
  )


def _imports(tree: ast.Module):
  """(imported module, imported names, at top level?) for every import statement."""
  top = {id(node) for node in tree.body}
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name, [], id(node) in top
    elif isinstance(node, ast.ImportFrom) and node.module:
      yield node.module, [alias.name for alias in node.names], id(node) in top


def _internal_targets(module: str, names: list[str]) -> set[str]:
  """The gan_jax modules an import loads: the module or the submodules named, and their parents."""
  targets = {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES} or {module}
  loaded = set()
  for target in targets:
    parts = target.split(".")
    loaded |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
  return loaded & set(MODULES)


def _graph():
  graph, commands, late = {}, set(), []
  for name, path in MODULES.items():
    tree = ast.parse(path.read_text())
    if _is_command(tree):
      commands.add(name)
    graph[name] = set()
    for module, names, at_top in _imports(tree):
      if module.split(".")[0] == "gan_jax":
        graph[name] |= _internal_targets(module, names) - {name}
        if not at_top and not _is_command(tree):
          late.append(f"{name} imports {module} inside a function")
      elif not at_top and module.split(".")[0] not in DEFERRABLE | {"jax", "numpy"}:
        late.append(f"{name} imports {module} inside a function")
  return graph, commands, late


def test_import_graph_has_no_cycles():
  graph, _, _ = _graph()
  done, path = set(), []

  def visit(node):
    if node in path:
      raise AssertionError("import cycle: " + " -> ".join(path[path.index(node) :] + [node]))
    if node in done:
      return
    path.append(node)
    for child in sorted(graph[node]):
      if child.startswith(node + "."):  # a package's own submodules load after it
        continue
      visit(child)
    path.pop()
    done.add(node)

  for node in sorted(graph):
    visit(node)


def test_commands_sit_on_top_and_libraries_import_at_the_top():
  graph, commands, late = _graph()
  assert {
    "gan_jax.main",
    "gan_jax.sample",
    "gan_jax.evaluate",
    "gan_jax.classifier",
    "gan_jax.sweep",
    "gan_jax.curves",
  } == commands
  importers = {name: sorted(m for m, deps in graph.items() if name in deps) for name in commands}
  assert all(not who for who in importers.values()), importers
  assert not late, late
  for path in (ROOT / "tests").glob("*.py"):  # tests run commands as subprocesses
    imported = {m for m, _, _ in _imports(ast.parse(path.read_text()))}
    imported |= {f"{m}.{n}" for m, names, _ in _imports(ast.parse(path.read_text())) for n in names}
    assert not imported & commands, (path.name, imported & commands)


def test_one_place_builds_the_train_step():
  builders = []
  for path in [
    *PACKAGE.rglob("*.py"),
    *(ROOT / "benchmarks").glob("*.py"),
    *(ROOT / "tests").glob("*.py"),
  ]:
    for module, names, _ in _imports(ast.parse(path.read_text())):
      if module == "gan_jax.train_step" and {"train_step", "init_state", "make_gan"} & set(names):
        builders.append(path.relative_to(ROOT).as_posix())
  assert sorted(set(builders)) == ["gan_jax/experiment.py"]


def test_training_and_sweep_summaries_run_without_tensorflow_or_scipy(tmp_path):
  """TensorFlow takes seconds to import and to tear down: only the tfds source loads it; scipy
  only FID. Importing every library module, training a toy run (TensorBoard scalars and its
  evaluation included) and writing a sweep's HParams dashboard load neither."""
  _, commands, _ = _graph()
  libraries = ", ".join(sorted(set(MODULES) - commands))  # commands define clashing flags
  code = f"""import sys, {libraries}
from conftest import tiny_toy_config
gan_jax.train.train_and_evaluate(tiny_toy_config(), {str(tmp_path)!r} + "/run")
gan_jax.ranking.write_hparams({str(tmp_path)!r}, ["run"], [dict(seed=0)], None)
print("tensorflow" in sys.modules, "scipy" in sys.modules)"""
  result = run_python("-c", f"import sys; sys.path.insert(0, 'tests')\n{code}")
  assert result.returncode == 0 and result.stdout.strip().endswith("False False"), (
    result.stdout + result.stderr
  )
