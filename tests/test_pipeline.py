"""The pipeline compiles importing only kfp, and the YAML loads back into kfp."""

import subprocess
import sys

import yaml
from kfp import components


def test_compile_imports_only_kfp(tmp_path):
    code = (
        "import sys; from pipelines.pipeline import compile_pipeline; "
        f"compile_pipeline({str(tmp_path / 'p.yaml')!r}); "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'ray', 'torch', 'mlflow', 'rsc'}); "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    spec = yaml.safe_load((tmp_path / "p.yaml").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert list(tasks) == [
        "deploy-op",
        "evaluate-op",
        "features-op",
        "ingest-op",
        "register-op",
        "split-op",
        "train-op",
        "tune-op",
    ]
    assert tasks["train-op"]["dependentTasks"] == ["split-op", "tune-op"]


def test_compiled_yaml_loads_back(tmp_path):
    from rsc.cli.main import main

    assert main(["compile", "-o", str(tmp_path / "pipeline.yaml")]) == 0
    loaded = components.load_component_from_file(str(tmp_path / "pipeline.yaml"))
    assert loaded.name == "rsc-train-evaluate-serve"
    assert "settings_json" in loaded.component_spec.inputs
