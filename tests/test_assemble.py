"""P0 assembly from pretrained components, exercised on local model directories as hub stand-ins."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaForConditionalGeneration,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from finstage.config import ParamsError, parse
from finstage.model.assemble import ModelConfig, build_p0, load_tokenizer
from finstage.model.tokenizer import train_tokenizer
from finstage.records import IMAGE_MARKER

from .conftest import TEXTS, repo_params, tiny_model_config


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


def pretrained_cfg(root, llm: str = "llm") -> ModelConfig:
    raw = repo_params()["model"]
    raw["vision"] = {"pretrained": str(root / "vision"), "revision": None, "config": {}}
    raw["llm"] = {"pretrained": str(root / llm), "revision": None, "config": {}}
    raw["tokenizer"] = {"pretrained": str(root / llm), "revision": None, "vocab_size": 2000}
    return parse(ModelConfig, raw, "model")


SMALL_LM = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
}


def with_image(model, ids: list[int]) -> dict[str, torch.Tensor]:
    """A prompt holding one page's placeholders, so the vision tower and projector count too."""
    image = [model.config.image_token_id] * model.config.image_seq_length
    side = model.config.vision_config.image_size
    pixels = torch.linspace(-1, 1, 3 * side * side).reshape(1, 3, side, side)
    return {"input_ids": torch.tensor([ids[:1] + image + ids[1:]]), "pixel_values": pixels}


def assert_reloads_identically(p0, out) -> LlavaForConditionalGeneration:
    """save_pretrained, load with transformers alone, and get the same logits on an image prompt."""
    p0.save_pretrained(out)
    reloaded = LlavaForConditionalGeneration.from_pretrained(out).eval()
    batch = with_image(p0, [0, 5, 9, 17, 33])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, p0(**batch).logits, rtol=0, atol=0)
    return reloaded


# a tied Qwen2 (the small Qwen2 checkpoints share embedding and head) and an untied Mistral
OTHER_LMS = {
    "qwen2": (Qwen2ForCausalLM, Qwen2Config, True),
    "mistral": (MistralForCausalLM, MistralConfig, False),
}


@pytest.mark.parametrize("kind", sorted(OTHER_LMS))
def test_p0_takes_any_causal_lm_class_from_a_local_directory(local_hub, tmp_path, kind):
    root, _, vocab = local_hub
    cls, config_cls, tied = OTHER_LMS[kind]
    torch.manual_seed(1)
    llm = cls(config_cls(vocab_size=vocab, tie_word_embeddings=tied, **SMALL_LM)).eval()
    llm.save_pretrained(tmp_path / kind)
    AutoTokenizer.from_pretrained(root / "llm").save_pretrained(tmp_path / kind)
    (tmp_path / "vision").symlink_to(root / "vision")
    cfg = pretrained_cfg(tmp_path, kind)
    p0 = build_p0(cfg, load_tokenizer(cfg.tokenizer, cfg.trust_remote_code)).eval()
    assert p0.config.text_config.model_type == kind
    assert type(p0.model.language_model).__name__ == type(llm.model).__name__
    ids = torch.tensor([[0, 5, 9, 17, 33]])
    with torch.no_grad():  # the new <image> row in the vocabulary leaves the old logits alone
        torch.testing.assert_close(
            p0(input_ids=ids).logits[..., :vocab], llm(input_ids=ids).logits, rtol=0, atol=1e-5
        )
    head, embed = p0.lm_head.weight, p0.model.language_model.embed_tokens.weight
    assert (head.data_ptr() == embed.data_ptr()) == tied
    reloaded = assert_reloads_identically(p0, tmp_path / "p0")
    head, embed = reloaded.lm_head.weight, reloaded.model.language_model.embed_tokens.weight
    assert (head.data_ptr() == embed.data_ptr()) == tied


def test_p0_from_a_config_with_a_model_type(tmp_path):
    cfg = tiny_model_config()
    cfg.llm.config = {"model_type": "qwen2", **SMALL_LM}
    tok = train_tokenizer(TEXTS * 20, 400)
    p0 = build_p0(cfg, tok).eval()
    assert type(p0.model.language_model).__name__ == "Qwen2Model"
    assert p0.config.text_config.model_type == "qwen2"
    assert p0.config.text_config.vocab_size == len(tok)
    assert p0.lm_head.weight.data_ptr() != p0.model.language_model.embed_tokens.weight.data_ptr()
    assert_reloads_identically(p0, tmp_path)


def test_config_without_model_type_is_still_a_llama():
    p0 = build_p0(tiny_model_config(), train_tokenizer(TEXTS * 20, 400))
    assert type(p0.model.language_model).__name__ == "LlamaModel"
    assert p0.config.text_config.model_type == "llama"


def test_an_lm_whose_head_soft_caps_logits_is_refused():
    cfg = tiny_model_config()
    cfg.llm.config = {"model_type": "gemma2", "head_dim": 16, **SMALL_LM}
    with pytest.raises(ValueError, match="final_logit_softcapping"):
        build_p0(cfg, train_tokenizer(TEXTS * 20, 400))


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
