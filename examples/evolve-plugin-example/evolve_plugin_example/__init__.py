"""An example evolve plugin: a boolean-circuit search space (circuits.py, evaluated by truth_table.py)
and a reporter that logs every individual as JSON lines (jsonl_log.py)."""
