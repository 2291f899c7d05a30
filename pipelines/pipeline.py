"""The DAG: settings -> ingest -> features -> split -> tune -> train -> evaluate -> register -> deploy.

Each task says how Kubeflow runs its pod: caching for the deterministic steps, retries for the steps
that call services (a transient failure of a network fetch, MLflow or Ray Serve), CPU and memory
requests, and the storage Secret as environment variables. Train and tune pods only wait for their
RayJob when ``cluster.launcher`` is ``kuberay``; with ``local`` they train in the pod, and the
``pod_*`` parameters put that pod on a GPU node.
"""

from dataclasses import dataclass
from pathlib import Path

from kfp import compiler, dsl, kubernetes
from kfp.dsl.graph_component import GraphComponent

from pipelines.components import (
    IMAGE,
    deploy_op,
    evaluate_op,
    features_op,
    ingest_op,
    register_op,
    settings_op,
    split_op,
    train_op,
    tune_op,
)

PIPELINE_NAME = "rsc-train-evaluate-serve"
# Keys of the storage Secret handed to every step as environment variables (S3 or MinIO access; each
# optional, AWS_ENDPOINT_URL for MinIO or another S3-compatible store).
STORAGE_SECRET_KEYS = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
}
# The Ray token Secret of the chart's clusters (key auth_token, as KubeRay reads it): steps that call a
# Ray cluster's Jobs API (cluster.launcher: ray-jobs) present it.
RAY_TOKEN_SECRET_KEYS = {"auth_token": "RAY_AUTH_TOKEN"}


@dataclass(frozen=True)
class StepPod:
    """What every step's pod gets from the run's parameters: the image and the Secrets to read."""

    image: str
    storage_secret: str
    ray_token_secret: str


def _step(
    task: dsl.PipelineTask,
    name: str,
    pod: StepPod,
    *,
    cache: bool,
    retries: int = 0,
    cpu: str = "500m",
    memory: str = "1Gi",
) -> dsl.PipelineTask:
    """Display name, image, caching, retries, requests and limits, Secrets and label of one task."""
    task.set_display_name(name).set_caching_options(cache).set_container_image(pod.image)
    task.set_cpu_request(cpu).set_memory_request(memory).set_memory_limit(memory)
    if retries:
        task.set_retry(num_retries=retries, backoff_duration="30s", backoff_factor=2.0)
    kubernetes.use_secret_as_env(task, pod.storage_secret, STORAGE_SECRET_KEYS, optional=True)
    kubernetes.use_secret_as_env(task, pod.ray_token_secret, RAY_TOKEN_SECRET_KEYS, optional=True)
    task.set_env_variable("RAY_AUTH_MODE", "token")
    # The chart's NetworkPolicies let pods with this label reach MLflow and the Ray dashboards.
    kubernetes.add_pod_label(task, "app.kubernetes.io/part-of", "rsc")
    return task


def make_pipeline(retry: bool = True) -> GraphComponent:
    """The DAG; ``retry=False`` for the local runner, where a failure is not transient and a retry
    would only repeat it after a back-off."""

    @dsl.pipeline(name=PIPELINE_NAME, description="Bars to a served RL trading policy.")
    def rsc_pipeline(
        settings_json: str = "",
        symbols: str = "",
        start: str = "",
        end: str = "",
        algorithm_config: str = "",
        num_samples: int = 0,
        gpus: int = -1,
        launcher: str = "",
        storage_secret: str = "rsc-storage",
        ray_token_secret: str = "rsc-ray-token",
        image: str = IMAGE,
        pod_gpus: int = 0,
        pod_node_selector: dict = {},  # noqa: B006 (KFP reads parameter defaults from the signature)
        pod_tolerations: list = [],  # noqa: B006
    ) -> str:
        """Wire the steps.

        Args:
            settings_json: the run's settings as JSON (``rsc submit`` sends them); empty = the image's
                configs/base.yaml + configs/cluster.yaml.
            symbols: comma-separated symbols (data.symbols). Every parameter left at its default ("",
                0 for num_samples, -1 for gpus) keeps the settings' value.
            start: first bar date, YYYY-MM-DD (data.start).
            end: last bar date (data.end).
            algorithm_config: rllib_configs YAML (train.algorithm_config).
            num_samples: Tune trials, the HPO budget (tune.num_samples); 0 keeps the settings' value.
            gpus: GPUs for RLlib learners (cluster.gpus): the RayJobs get a GPU worker group; -1 keeps.
            launcher: ``kuberay`` (a RayJob per train/tune step) or ``local`` (in the step's pod).
            storage_secret: Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL
                for MinIO) for every step.
            ray_token_secret: Secret with the Ray token (key auth_token) of the cluster the ray-jobs
                launcher submits to.
            image: the project image every step runs in (``rsc submit --image``).
            pod_gpus: GPUs of the train and tune pods themselves (launcher=local only).
            pod_node_selector: node labels for the train and tune pods (launcher=local on GPU nodes).
            pod_tolerations: tolerations of the train and tune pods (tainted GPU nodes).
        """
        settings = settings_op(
            settings_json=settings_json,
            symbols=symbols,
            start=start,
            end=end,
            algorithm_config=algorithm_config,
            num_samples=num_samples,
            gpus=gpus,
            launcher=launcher,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,  # each execution writes under <root>/<name>/<id>/
        )
        pod = StepPod(image, storage_secret, ray_token_secret)
        _step(settings, "settings", pod, cache=True, cpu="100m", memory="256Mi")
        resolved = settings.output
        ingest = ingest_op(settings_json=resolved)
        _step(ingest, "ingest", pod, cache=True, retries=3 * retry, cpu="1", memory="2Gi")
        features = features_op(settings_json=resolved, bars=ingest.outputs["bars"])
        _step(features, "features", pod, cache=True, cpu="1", memory="4Gi")
        split = split_op(settings_json=resolved, features=features.outputs["features"])
        _step(split, "split", pod, cache=True, cpu="1", memory="4Gi")
        tune = tune_op(settings_json=resolved, split=split.outputs["split"], scaler=split.outputs["scaler"])
        # Training is not bit-reproducible across Ray workers and is what a new run asks for: never cached.
        _step(tune, "tune", pod, cache=False, cpu="1", memory="4Gi")
        train = train_op(
            settings_json=resolved,
            split=split.outputs["split"],
            scaler=split.outputs["scaler"],
            best_params=tune.outputs["best_params"],
        )
        _step(train, "train", pod, cache=False, cpu="1", memory="4Gi")
        for task in (tune, train):
            task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(pod_gpus)
            kubernetes.add_node_selector_json(task, pod_node_selector)
            kubernetes.add_toleration_json(task, pod_tolerations)
        evaluate = evaluate_op(
            settings_json=resolved,
            split=split.outputs["split"],
            scaler=split.outputs["scaler"],
            model=train.outputs["model"],
        )
        _step(evaluate, "evaluate", pod, cache=True, cpu="1", memory="4Gi")
        register = register_op(
            settings_json=resolved,
            split=split.outputs["split"],
            model=train.outputs["model"],
            metrics=evaluate.outputs["metrics"],
            report=evaluate.outputs["report"],
        )
        _step(register, "register", pod, cache=False, retries=3 * retry)
        deploy = deploy_op(
            settings_json=resolved,
            model_name=register.outputs["model_name"],
            version=register.outputs["version"],
        )
        _step(deploy, "deploy", pod, cache=False, retries=2 * retry)
        return deploy.output

    return rsc_pipeline


rsc_pipeline = make_pipeline()
local_pipeline = make_pipeline(retry=False)


def compile_pipeline(path: str | Path) -> Path:
    """Write the pipeline YAML that a Kubeflow Pipelines server (or ``kfp.Client``) accepts."""
    compiler.Compiler().compile(rsc_pipeline, str(path))
    return Path(path)
