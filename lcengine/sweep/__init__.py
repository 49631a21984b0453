"""`lcengine sweep`: the paper's hyper-parameter protocol (App. 5.3: random search, the best
configuration kept) as a command that runs wherever there are machines.

  space.py          the search space (TOML), drawn by Optuna's RandomSampler
  study.py          the Optuna study: storage (journal file or database URL), the definition
  worker.py         a worker: claims trials, trains each as `lcengine train`, reports, prunes
  trial_process.py  a trial's training process, stopped cleanly when its worker dies
  report.py         ranked trials, the best configuration as a preset, the figure
  command.py        the click command

Optuna does the parts where a well-kept library beats our own code: the random sampler (the
paper's protocol), the median and successive-halving pruners, and the storages through which
workers share a study with no coordinator of ours (a journal file on one filesystem, a database
server across machines; `mpiexec -n K lcengine sweep ...` simply starts K workers).
"""
