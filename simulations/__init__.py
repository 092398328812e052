"""SendLab's offline simulator: off-policy evaluation of logged sends, and synthetic policy comparison.

Submodules (import from them directly; nothing heavy happens at import time):

- :mod:`simulations.data`: ``LoggedData`` and ``SimulationInputError``;
- :mod:`simulations.logs`: ``load_logs``, ``read_logs``, ``iter_logs``, ``scan_log``, ``validate_frame``;
  :mod:`simulations.log_files`: ``read_log_table``, ``log_columns`` (a file's format, header, chunks);
  :mod:`simulations.column_maps`: ``ColumnMap``, ``load_column_map``,
  ``default_column_map`` (SendLab's own log columns); :mod:`simulations.load_reports`: ``LoadReport``,
  ``LoadSummary``; :mod:`simulations.log_records`: ``logs_from_records``; :mod:`simulations.row_checks`:
  ``split_rows`` (the checks both readers share); :mod:`simulations.log_arrays`: ``LogArrays`` (a file's
  columns as numpy arrays, checked without pandas); :mod:`simulations.feature_columns`:
  ``FeatureColumns`` (features as one array per feature);
- :mod:`simulations.sources`: ``FileSource``, ``RecordSource``, ``ProbabilityReader`` (logs read in
  chunks, any range of rows, as often as needed);
- :mod:`simulations.streaming`: ``ReplayRequest`` and ``replay_source``, a whole replay in bounded
  memory (what ``sendlab replay`` runs), with :mod:`simulations.merged_sums` (observed value, lifts,
  Poisson bootstrap);
- :mod:`simulations.estimators`: ``estimate_policy_value``, ``estimator_state(s)``, ``PolicyEstimate``;
  :mod:`simulations.estimator_kernels`: the estimator types and their per-round kernels;
- :mod:`simulations.reward_model`: ``fit_reward_model`` (logistic, linear, VW);
- :mod:`simulations.replay`: ``evaluate_policy``, ``probabilities_from_policy``, ``load_probabilities``,
  ``train_policy``, ``replay_report``;
- :mod:`simulations.candidates`: ``CandidateSpec``, ``load_candidate``;
- :mod:`simulations.replay_files`: ``replay_files`` (what ``sendlab replay`` runs);
- :mod:`simulations.chunked` and :mod:`simulations.dask_estimation`: ``estimate_chunks``, ``estimate_dask``;
- :mod:`simulations.scenario` and :mod:`simulations.synthetic`: ``load_scenario``, ``run_simulation``;
  :mod:`simulations.factorial_design`: the multivariate design and its factorial analysis;
  :mod:`simulations.scenario_timing` and :mod:`simulations.timed_run`: delays, drift, named policies
  and their learning modes, the drift monitor on a clock; :mod:`simulations.simulation_results`: what
  ``run_simulation`` returns;
- :mod:`simulations.report`: ``simulation_html``, ``replay_html`` and their figures;
- :mod:`simulations.history`: ``read_history``, ``read_sql_history``, ``HistoryColumns`` (a purchase and
  engagement history in chunks, for :mod:`experiments.features`).
"""
