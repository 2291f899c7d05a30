"""L0: pure numpy domain kernels shared by the env, the backtester, the server and paper trading.

No I/O and no pandas, ray or mlflow here: everything takes and returns numpy arrays or NamedTuples.
"""
