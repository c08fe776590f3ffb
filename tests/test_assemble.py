"""P0 assembly from pretrained components, exercised on local model directories as hub stand-ins."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from finstage.config import ParamsError, parse
from finstage.model.assemble import ModelConfig, build_p0, load_tokenizer
from finstage.records import IMAGE_MARKER

from .conftest import TEXTS, repo_params


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory):
    """A SigLIP checkpoint, a Llama checkpoint and a tokenizer without <image> or chat template."""
    root = tmp_path_factory.mktemp("hub")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        TEXTS * 5,
        trainers.BpeTrainer(
            vocab_size=320,
            special_tokens=["<s>", "</s>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    tok.save_pretrained(root / "llm")
    torch.manual_seed(0)
    llm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            tie_word_embeddings=False,
        )
    )
    llm.save_pretrained(root / "llm")
    SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
        )
    ).save_pretrained(root / "vision")
    return root, llm.eval(), len(tok)


def pretrained_cfg(root) -> ModelConfig:
    raw = repo_params()["model"]
    raw["vision"] = {"pretrained": str(root / "vision"), "revision": None, "config": {}}
    raw["llm"] = {"pretrained": str(root / "llm"), "revision": None, "config": {}}
    raw["tokenizer"] = {"pretrained": str(root / "llm"), "revision": None, "vocab_size": 2000}
    return parse(ModelConfig, raw, "model")


def test_p0_from_pretrained_parts_keeps_the_llm_exact(local_hub):
    root, llm, vocab = local_hub
    cfg = pretrained_cfg(root)
    tok = load_tokenizer(cfg.tokenizer, cfg.trust_remote_code)
    p0 = build_p0(cfg, tok).eval()
    assert IMAGE_MARKER in tok.get_vocab() and tok.chat_template is not None
    assert (
        p0.config.image_seq_length == 4
        and p0.config.image_token_id == tok.convert_tokens_to_ids(IMAGE_MARKER)
    )
    ids = torch.tensor([[0, 5, 9, 17, 33]])
    with torch.no_grad():
        assert torch.allclose(
            p0(input_ids=ids).logits[..., :vocab], llm(input_ids=ids).logits, atol=1e-5
        )
    original = SiglipVisionModel.from_pretrained(root / "vision").state_dict()
    assembled = p0.model.vision_tower.state_dict()
    assert assembled and all(
        torch.equal(tensor, original[name]) for name, tensor in assembled.items()
    )


def test_projector_is_fresh_and_shaped_like_the_recipe(local_hub):
    root, _, _ = local_hub
    cfg = pretrained_cfg(root)
    p0 = build_p0(cfg, load_tokenizer(cfg.tokenizer, False))
    proj = p0.model.multi_modal_projector
    assert (proj.linear_1.in_features, proj.linear_1.out_features) == (16, 32)
    assert (proj.linear_2.in_features, proj.linear_2.out_features) == (32, 32)
    assert type(proj.act).__name__ == "GELUActivation"


def test_component_needs_exactly_one_source():
    raw = repo_params()["model"]
    raw["vision"]["pretrained"] = "x"
    with pytest.raises(ParamsError, match="model.vision"):
        parse(ModelConfig, raw, "model")
