"""Circuit discovery: patching, attribution patching, ACDC-style pruning, logit
attribution and SAE-code head finding, scored against circuits known in advance.

Every method takes a TransformerLens ``HookedTransformer`` and a
:class:`~circuits.tasks.Task` (clean/corrupt token ids + a per-example metric)
and returns plain tensors or a :class:`~circuits.result.Circuit`.

Graph convention (:mod:`circuits.graph`)
    Upstream nodes ``input`` (embeddings), ``a{L}.h{H}`` (head output without
    ``b_O``), ``m{L}`` (MLP output); receivers ``a{L}.h{H}<q|k|v>`` (or
    ``a{L}.kv{G}<k|v>``, one per KV group, under grouped-query attention),
    ``m{L}`` and ``logits``. Edge ``u->r`` when ``u`` is computed before ``r``
    reads; a 2-layer × 4-head attention-only model has 81 edges. Scores are
    dense ``[n_upstream, n_receivers]`` matrices; an edge's score estimates
    ``metric(clean run with the edge patched) - metric(clean run)``, mean over
    examples.

Modules and entry points
    :mod:`circuits.tasks`       ``Task(name, clean, corrupt, metric)``, ``AnswerMetric``, ``NextTokenMetric``,
                                ``ImageTask``, ``induction_task`` (token ids; no tokenizer needed),
                                ``ioi_task``, ``greater_than_task``, ``docstring_task``,
                                ``multiple_choice_task``, ``make_task(name, model)``, ``single_token_ids``
    :mod:`circuits.graph`       ``Graph.from_model(model)`` (``upstream``, ``receivers``, ``valid``,
                                ``edges()``, ``edge_mask``), ``edge_hooks``
    :mod:`circuits.patching`    ``patch_edges`` (exact, the ground truth), ``run_with_edges`` and
                                ``edge_metric`` (the engine: any set of patched edges),
                                ``source_outputs``/``node_outputs``, ``patch_heads``/``patch_mlps``/
                                ``patch_resid`` (activation patching), ``path_patch``
    :mod:`circuits.attribution` ``eap``, ``eap_ig`` (memory: one forward/backward + per-node diffs per batch)
    :mod:`circuits.acdc`        ``acdc`` (threshold pruning on KL or the task metric)
    :mod:`circuits.logit`       ``direct_logit_attribution`` (final LN scale frozen), ``logit_lens``
    :mod:`circuits.heads`       ``head_scores`` (induction, previous-token, duplicate-token), ``top_heads``,
                                ``ablate_heads``
    :mod:`circuits.result`      ``Circuit`` (``top_k``, ``threshold``, ``edges()``, ``nodes()``, JSON),
                                ``faithfulness`` (corrupt/mean/zero/resample), ``compare_to_truth``
    :mod:`circuits.figure`      ``circuit_figure`` (interactive plotly graph)
    :mod:`circuits.cli`         ``interp circuits --model M --task T --method eap|eap-ig|exact|acdc --out DIR``
    :mod:`circuits.models`      ground truth: ``load_circuit_model("induction-2l" | "planted-4x8")``,
                                ``circuit_truth(name)`` (edge-by-edge exact patching effects, true edges
                                and heads), ``induction_task(name)`` (the task the truth was measured on)
    :mod:`circuits.sae_heads`   ``sae_code_heads`` (heads ranked by how their discrete SAE codes change
                                between clean and corrupt prompts)
    :mod:`circuits.vit_paths`   ``neuron_path`` (layer-progressive most influential MLP neuron per layer in
                                a ViT, screened by gradient attribution, against random paths),
                                ``probe_readout``

Every edge method takes ``graph=`` (default ``Graph.from_model(model)``),
``ablation=`` (what a patched edge carries: ``corrupt`` outputs, or the
``mean``/``zero``/``resample`` of the clean ones) and ``batch_size=``.

>>> from circuits.tasks import induction_task                        # doctest: +SKIP
>>> from circuits.attribution import eap                             # doctest: +SKIP
>>> scores = eap(model, induction_task(model, n=16))                 # doctest: +SKIP
>>> circuit = scores.top_k(50)                                       # doctest: +SKIP
>>> faithfulness(model, task, circuit, "mean").score                 # doctest: +SKIP
>>> circuit.to_json("circuit.json"); circuit_figure(circuit).write_html("c.html")  # doctest: +SKIP

Submodules are imported on use: ``import circuits`` is cheap.
"""
