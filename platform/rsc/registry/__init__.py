"""L2: the only package that imports ``mlflow``: runs, model versions, aliases, the policy as pyfunc."""
