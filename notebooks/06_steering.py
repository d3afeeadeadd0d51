# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Steering, measured as effect against cost
#
# `interp.steering` builds edits (`Steer`, `SubspaceSteer`, `SAEEdit`, neuron
# clamps) that run inside `interp.interventions` and always remove their hooks.
# This notebook steers SmolLM2 toward the word " dog":
#
# * a contrastive (CAA) steering vector from two prompt sets;
# * a coefficient sweep that measures the **effect** (the target's log-probability
#   lift) against the **cost** (KL on neutral text, loss on held-out text), beside a
#   random vector of the same norm and a prompting baseline;
# * steered and unsteered generations side by side;
# * the MLP neurons whose output weights promote " dog", clamped one at a time.
#
# Run it with `jupyter lab notebooks/`; `06_steering.py` and its `.ipynb` are a
# jupytext pair (`jupytext --sync notebooks/06_steering.py`). `INTERP_NOTEBOOK_SMALL=1`
# picks the test suite's sizes. The CLI: `interp steer --model smollm2-135m ...`.

# %% tags=["parameters"]
import os
from pathlib import Path

SMALL = os.environ.get("INTERP_NOTEBOOK_SMALL") == "1"
RUN = Path("runs/notebooks/06_steering")
LAYER = 10  # the residual stream steered below (and checked by the asserts)
LAYERS = [LAYER] if SMALL else [4, 6, LAYER, 14]  # residual-stream hooks swept
COEFFICIENTS = [0, 2, 4] if SMALL else [0, 1, 2, 4, 8]
MAX_NEW_TOKENS = 12 if SMALL else 40

# %%
import interp
from interp.steering import Steer, generate, steering_sweep, steering_vector

model = interp.load_model("smollm2-135m")
TARGET = " dog"
positive = ["I love my dog.", "The dog barked at the mailman.", "We walked the dog in the park.",
            "My puppy is a good dog."]  # fmt: skip
negative = ["I love my cat.", "The cat sat on the mat.", "We fed the cat in the kitchen.", "My kitten is a good cat."]
prompts = ["Yesterday I saw a", "My favourite animal is the", "She went outside with her", "In the garden there was a"]
neutral = ["The weather was mild and the fields were green.", "She opened the door and called her brother."]
heldout = ["The river ran through the valley toward the sea.", "He wrote a letter to his friends in the city."]

# %% [markdown]
# ## A steering vector
#
# `steering_vector` is the mean activation over the positive prompts minus that
# over the negative ones (here averaged over each prompt's tokens). One vector
# per swept layer.

# %%
vectors = {f"blocks.{L}.hook_resid_post": steering_vector(model, positive, negative, f"blocks.{L}.hook_resid_post",
                                                          position="mean") for L in LAYERS}  # fmt: skip
{h: round(float(v.norm()), 2) for h, v in vectors.items()}

# %% [markdown]
# ## Effect against cost
#
# Every row is one method, hook and coefficient; `effect` is in nats (the lift of
# log p(" dog") at each prompt's last position), `KL` the divergence on neutral
# text, `dloss` the change of held-out loss.

# %%
sweep = steering_sweep(
    model, vectors, TARGET, prompts, neutral, heldout, coefficients=COEFFICIENTS, prompt_prefix="Talk about dogs."
)
files = sweep.save(RUN)  # sweep.json and an offline plotly page, sweep.html
print(sweep.table())


# %%
def row(method, hook, coef):
    return next(r.means() for r in sweep.rows if r.method == method and r.hook == hook and r.coefficient == coef)


hook = f"blocks.{LAYER}.hook_resid_post"
vec, rnd = row("vector", hook, 2.0), row("random", hook, 2.0)
prompting = next(r.means() for r in sweep.rows if r.method == "prompting")
print(
    f"{hook}, coefficient 2: effect {vec['effect_mean']:.2f} nats (random {rnd['effect_mean']:.2f}), "
    f"KL {vec['kl_mean']:.2f}; prompting: effect {prompting['effect_mean']:.2f}, KL {prompting['kl_mean']:.2f}"
)

# %% [markdown]
# At a moderate coefficient the vector raises p(" dog") where a random vector of
# the same norm does not, and the cost (KL on neutral text) grows with the
# coefficient. Prompting the model ("Talk about dogs.") is a strong baseline:
# it moves the target more (its KL is in the table's last row).

# %%
assert vec["effect_mean"] > rnd["effect_mean"] + 0.5, (vec, rnd)
assert row("vector", hook, 4.0)["kl_mean"] > vec["kl_mean"] > 0
assert prompting["effect_mean"] > vec["effect_mean"]

# %% [markdown]
# ## Generations side by side
#
# `generate` runs greedy decoding with the edits active at every step (with
# the KV cache; the tokens are the same without it).

# %%
prompt = prompts[0]
plain = generate(model, prompt, max_new_tokens=MAX_NEW_TOKENS).text[0]
steered = generate(model, prompt, Steer(hook, vectors[hook], scale=2.0), max_new_tokens=MAX_NEW_TOKENS).text[0]
print(f"unsteered: {prompt}{plain}\nsteered:   {prompt}{steered}")
assert steered != plain
assert sum(len(hp._forward_hooks) for hp in model.hook_dict.values()) == 0  # no edit outlives its call

# %% [markdown]
# ## Neurons that write " dog"
#
# `find_neurons` ranks MLP neurons by how much their output weights promote the
# token through the unembedding (`W_out @ W_U`); `neuron_effect` clamps one of them
# at every position and measures the token's log-probability and the generation.

# %%
from interp.steering import find_neurons, neuron_effect

neurons = find_neurons(model, TARGET, k=5)
print(neurons)
top = neurons[0]
effect = neuron_effect(model, top["layer"], top["neuron"], 20.0, "My favourite animal is the", TARGET)
print(
    f"neuron {top['layer']}:{top['neuron']} clamped to 20: log p(' dog') {effect['logprob_before']:.2f} -> "
    f"{effect['logprob_after']:.2f}\n  before: {effect['text_before']!r}\n  after:  {effect['text_after']!r}"
)

# %% [markdown]
# Clamping the neuron that promotes " dog" most raises the token's
# log-probability by more than a nat:

# %%
assert effect["lift"] > 1.0, effect

# %% [markdown]
# ## The playground
#
# `SteeringPlayground` puts steered and unsteered generations side by side:
# pick the vector or the neuron, move the coefficient, edit the prompt; each
# change calls `generate` again (greedy decoding, cached by its arguments).

# %%
from interp.steering import neuron_clamp
from interp.widgets.steering import SteeringPlayground

playground = SteeringPlayground.for_model(
    model,
    {
        "dog - cat": (hook, vectors[hook]),
        f"neuron {top['layer']}:{top['neuron']}": lambda c: neuron_clamp(top["layer"], top["neuron"], 10.0 * c),
    },
    prompt=prompt,
    coefficient=2.0,
    coefficient_range=(-8.0, 8.0),
    max_new_tokens=MAX_NEW_TOKENS,
)
assert (playground.unsteered, playground.steered) == (plain, steered)
playground
