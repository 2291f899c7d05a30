"""L4: orchestration the ``rsc`` command and the KFP components share.

Stage entry (settings, logs and progress of one pipeline step), the launchers that run a stage in
process, on a Ray cluster's Jobs API or as a KubeRay RayJob, and ``rsc run``'s local execution of the
whole DAG. It sits above the stages and below the CLI, so a KFP component never imports the CLI.
"""
