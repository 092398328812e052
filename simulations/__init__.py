"""SendLab's offline simulator: off-policy evaluation of logged sends, and synthetic policy comparison.

Submodules (import from them directly; nothing heavy happens at import time):

- :mod:`simulations.data`: ``LoggedData`` and ``SimulationInputError``;
- :mod:`simulations.logs`: ``load_logs``, ``read_logs``, ``iter_logs``, ``load_column_map``,
  ``logs_from_records``, ``validate_frame``;
- :mod:`simulations.estimators`: ``estimate_policy_value``, ``estimator_state(s)``, ``PolicyEstimate``;
- :mod:`simulations.reward_model`: ``fit_reward_model`` (logistic, linear, VW);
- :mod:`simulations.replay`: ``evaluate_policy``, ``probabilities_from_policy``, ``load_probabilities``,
  ``train_policy``, ``replay_report``;
- :mod:`simulations.candidates`: ``CandidateSpec``, ``load_candidate``;
- :mod:`simulations.replay_files`: ``replay_files`` (what ``sendlab replay`` runs);
- :mod:`simulations.chunked` and :mod:`simulations.dask_estimation`: ``estimate_chunks``, ``estimate_dask``;
- :mod:`simulations.scenario` and :mod:`simulations.synthetic`: ``load_scenario``, ``run_simulation``;
- :mod:`simulations.report`: ``simulation_html``, ``replay_html`` and their figures.
"""
