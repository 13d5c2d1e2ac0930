"""Studies: the runs of one question as data (a TOML file, or one bench ships), planned against a
device-time budget before any work, run, and answered first with a decision table.

    file.py      read a study file (or a built-in) and check its shape
    resolve.py   its runs resolved by the option declarations the flags use; the resolved study
                 (what every report carries) and back from a report's copy
    plan.py      each run's estimated device time, and the cuts that fit the budget
    run.py       run it: one report per run, each carrying the study and the plan
    smoke.toml, helpline.toml   the built-in studies

It sits above launch (which it drives) and below analysis and render (which read the study a report
carries from the report model, never from here).
"""
