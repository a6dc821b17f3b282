"""The learned policy: a checkpoint (GPT + tokenizer) behind the policy interface.

Each call renders the batch of observations, encodes them, and generates every action in one ragged batch (prefill,
then KV-cache decoding until `<end>`), with `constrained` only well-formed operations of the observation's words
(atommem/action_constraint.py). The sampled ids and their log-probs are returned with the text, because RL
trains on exactly these ids (never re-tokenised). An observation longer than the window keeps its last tokens.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from atommem.observation import END_TOKEN, Observation, render
from atommem.policy import Action
from model.generate import generate


@dataclass
class SamplingConfig:
    greedy: bool = True
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_action_tokens: int = 128   # the longest teacher action seen is under 80 tokens (a qa3 move, a vt chain)
    max_batch: int = 128
    seed: int = 0
    constrained: bool = False      # well-formed ops of observation words only (atommem/action_constraint.py)


class ModelPolicy:
    name = "model"

    def __init__(self, model, tokenizer, sampling: SamplingConfig | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.sampling = sampling or SamplingConfig()
        self.end_id = tokenizer.token_id(END_TOKEN)
        self.generator = torch.Generator().manual_seed(self.sampling.seed)
        self.truncated = 0
        self._token_table = None  # built on first use by the action constraint

    @property
    def forkable(self) -> bool:
        """Whether episode workers may fork this policy (atommem/parallel.py): not with weights on a GPU."""
        return next(self.model.parameters()).device.type == "cpu"

    def reseed(self, stream: int) -> None:
        """Sampling stream `stream` of this policy's seed (one per episode worker, so none draws another's)."""
        self.generator = torch.Generator().manual_seed(self.sampling.seed * 1_000_003 + 7_919 * (stream + 1))

    def encode(self, text: str) -> list[int]:
        """Token ids of a rendered observation, cut to its last tokens when longer than the window allows."""
        ids = self.tokenizer.encode(text)
        room = self.model.config.max_seq_len - self.sampling.max_action_tokens
        if len(ids) > room:
            self.truncated += 1
            ids = ids[-room:]
        return ids

    def _constraint(self, texts: list[str]):
        from atommem.action_constraint import ActionConstraint, TokenTable
        if self._token_table is None:
            self._token_table = TokenTable.of(self.tokenizer)
        return ActionConstraint(self._token_table, texts)

    def act(self, observations: list[Observation]) -> list[Action]:
        s = self.sampling
        texts = [render(o) for o in observations]
        prompts = [self.encode(t) for t in texts]
        actions: list[Action] = []
        n_batches = -(-len(prompts) // s.max_batch)
        size = -(-len(prompts) // max(1, n_batches))  # even batches: 150 rows run as 75 + 75, not 128 + 22
        for start in range(0, len(prompts), size):
            batch = prompts[start:start + size]
            part = self._constraint(texts[start:start + size]) if s.constrained else None
            gens = generate(self.model, batch, s.max_action_tokens, stop_ids=self.end_id, greedy=s.greedy,
                            temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, generator=self.generator,
                            constraint=part)
            for ids, gen in zip(batch, gens):
                body = gen.token_ids[:-1] if gen.stopped else gen.token_ids
                actions.append(Action(self.tokenizer.decode(body), ids, gen.token_ids, gen.logprobs))
        return actions


class PolicyLoadError(RuntimeError):
    """A policy directory is missing, incomplete, corrupted or from another version."""


POLICY_FILES = ("model.safetensors", "config.json", "tokenizer.json", "agent.json")


# policy directories written before the action length was saved were trained with this cap
OLD_MAX_ACTION_TOKENS = 48


def save_policy(directory, model, tokenizer, agent_config: dict, max_action_tokens: int,
                constrained: bool = False) -> None:
    """A policy directory: weights + model config, tokenizer, the agent settings it was trained for, the longest
    action it was trained to write, and whether it decodes constrained (atommem/action_constraint.py)."""
    from pathlib import Path

    from model.checkpoint import save_model, write_json_atomic
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_model(d, model)
    tokenizer.save(d / "tokenizer.json")
    write_json_atomic(d / "agent.json", {"format": "atommem-policy", "version": 1, "agent": agent_config,
                                         "max_action_tokens": max_action_tokens, "constrained": constrained})


def load_policy(directory, sampling: SamplingConfig | None = None, device=None):
    """(ModelPolicy, agent settings dict) from a policy directory, or PolicyLoadError with a clear reason. The model
    goes to `device` (default: the GPU when there is one, see model.checkpoint.default_device)."""
    import json
    from pathlib import Path

    from model.checkpoint import CheckpointError, default_device, load_model
    from model.tokenizer import Tokenizer
    d = Path(directory)
    if not d.is_dir():
        raise PolicyLoadError(f"no trained policy at {d}: run `make train` first (or pass --ckpt DIR)")
    missing = [f for f in POLICY_FILES if not (d / f).is_file()]
    if missing:
        raise PolicyLoadError(f"{d} is not a complete policy directory: missing {', '.join(missing)}")
    try:
        meta = json.loads((d / "agent.json").read_text())
        if meta.get("format") != "atommem-policy" or meta.get("version") != 1:
            raise PolicyLoadError(f"{d}/agent.json is from another version or program")
        model = load_model(d, default_device() if device is None else device)
        tokenizer = Tokenizer.load(d / "tokenizer.json")
    except PolicyLoadError:
        raise
    except (CheckpointError, ValueError, OSError, KeyError, Exception) as err:
        raise PolicyLoadError(f"cannot load the policy in {d}: {err}") from None
    model.eval()
    if sampling is None:
        sampling = SamplingConfig(max_action_tokens=int(meta.get("max_action_tokens", OLD_MAX_ACTION_TOKENS)),
                                  constrained=bool(meta.get("constrained", False)))
    return ModelPolicy(model, tokenizer, sampling), meta["agent"]
