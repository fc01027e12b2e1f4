"""Name tables from Hugging Face `BarkModel` checkpoints to mindbark's sub-model files.

Numbers in a source name are matched by `{}`. A `None` destination means the tensor is knowingly dropped.
"""

SUBMODELS = ("semantic", "coarse_acoustics", "fine_acoustics", "codec_model")
# EnCodec's encoder, which generation never loads: a file of its own, for voices made from recordings
ENCODER = "codec_encoder"
ENCODER_PREFIX = "codec_model.encoder."

_GPT_BLOCK = {
    "layers.{}.layernorm_1.weight": "h.{}.ln_1.weight",
    "layers.{}.layernorm_1.bias": "h.{}.ln_1.bias",
    "layers.{}.layernorm_2.weight": "h.{}.ln_2.weight",
    "layers.{}.layernorm_2.bias": "h.{}.ln_2.bias",
    "layers.{}.attn.att_proj.weight": "h.{}.attn.c_attn.weight",
    "layers.{}.attn.att_proj.bias": "h.{}.attn.c_attn.bias",
    "layers.{}.attn.out_proj.weight": "h.{}.attn.c_proj.weight",
    "layers.{}.attn.out_proj.bias": "h.{}.attn.c_proj.bias",
    "layers.{}.attn.bias": None,  # causal mask buffer, rebuilt from positions
    "layers.{}.mlp.in_proj.weight": "h.{}.mlp.c_fc.weight",
    "layers.{}.mlp.in_proj.bias": "h.{}.mlp.c_fc.bias",
    "layers.{}.mlp.out_proj.weight": "h.{}.mlp.c_proj.weight",
    "layers.{}.mlp.out_proj.bias": "h.{}.mlp.c_proj.bias",
    "position_embeds_layer.weight": "wpe.weight",
    "layernorm_final.weight": "ln_f.weight",
    "layernorm_final.bias": "ln_f.bias",
}

CAUSAL = {
    **_GPT_BLOCK,
    "input_embeds_layer.weight": "wte.weight",
    "lm_head.weight": "lm_head.weight",
}

FINE = {
    **_GPT_BLOCK,
    "input_embeds_layers.{}.weight": "wtes.{}.weight",
    "lm_heads.{}.weight": "lm_heads.{}.weight",
}

FINE_TIED = {**FINE, "lm_heads.{}.weight": None}  # the heads are the codebook embeddings

# weight norm is folded into `.weight` before this table applies
CODEC = {
    "decoder.layers.{}.conv.weight": "decoder.layers.{}.conv.weight",
    "decoder.layers.{}.conv.bias": "decoder.layers.{}.conv.bias",
    "decoder.layers.{}.block.{}.conv.weight": "decoder.layers.{}.block.{}.conv.weight",
    "decoder.layers.{}.block.{}.conv.bias": "decoder.layers.{}.block.{}.conv.bias",
    "decoder.layers.{}.shortcut.conv.weight": "decoder.layers.{}.shortcut.conv.weight",
    "decoder.layers.{}.shortcut.conv.bias": "decoder.layers.{}.shortcut.conv.bias",
    "decoder.layers.{}.lstm.weight_ih_l{}": "decoder.layers.{}.lstm.weight_ih_l{}",
    "decoder.layers.{}.lstm.weight_hh_l{}": "decoder.layers.{}.lstm.weight_hh_l{}",
    "decoder.layers.{}.lstm.bias_ih_l{}": "decoder.layers.{}.lstm.bias_ih_l{}",
    "decoder.layers.{}.lstm.bias_hh_l{}": "decoder.layers.{}.lstm.bias_hh_l{}",
    "quantizer.layers.{}.codebook.embed": "quantizer.layers.{}.codebook.embed",
    # training-time codebook statistics
    "quantizer.layers.{}.codebook.embed_avg": None,
    "quantizer.layers.{}.codebook.cluster_size": None,
    "quantizer.layers.{}.codebook.inited": None,
}

# weight norm is folded into `.weight` before this table applies; names are the ones after `codec_model.`
CODEC_ENCODER = {
    "encoder.layers.{}.conv.weight": "encoder.layers.{}.conv.weight",
    "encoder.layers.{}.conv.bias": "encoder.layers.{}.conv.bias",
    "encoder.layers.{}.block.{}.conv.weight": "encoder.layers.{}.block.{}.conv.weight",
    "encoder.layers.{}.block.{}.conv.bias": "encoder.layers.{}.block.{}.conv.bias",
    "encoder.layers.{}.shortcut.conv.weight": "encoder.layers.{}.shortcut.conv.weight",
    "encoder.layers.{}.shortcut.conv.bias": "encoder.layers.{}.shortcut.conv.bias",
    "encoder.layers.{}.lstm.weight_ih_l{}": "encoder.layers.{}.lstm.weight_ih_l{}",
    "encoder.layers.{}.lstm.weight_hh_l{}": "encoder.layers.{}.lstm.weight_hh_l{}",
    "encoder.layers.{}.lstm.bias_ih_l{}": "encoder.layers.{}.lstm.bias_ih_l{}",
    "encoder.layers.{}.lstm.bias_hh_l{}": "encoder.layers.{}.lstm.bias_hh_l{}",
}

# HuBERT from a `transformers` HubertModel snapshot (facebook/hubert-base-ls960); weight norm folded first
HUBERT = {
    "feature_extractor.conv_layers.{}.conv.weight": "feature_extractor.conv_layers.{}.conv.weight",
    "feature_extractor.conv_layers.{}.conv.bias": "feature_extractor.conv_layers.{}.conv.bias",
    "feature_extractor.conv_layers.{}.layer_norm.weight": "feature_extractor.conv_layers.{}.layer_norm.weight",
    "feature_extractor.conv_layers.{}.layer_norm.bias": "feature_extractor.conv_layers.{}.layer_norm.bias",
    "feature_projection.layer_norm.weight": "feature_projection.layer_norm.weight",
    "feature_projection.layer_norm.bias": "feature_projection.layer_norm.bias",
    "feature_projection.projection.weight": "feature_projection.projection.weight",
    "feature_projection.projection.bias": "feature_projection.projection.bias",
    "encoder.pos_conv_embed.conv.weight": "encoder.pos_conv_embed.weight",
    "encoder.pos_conv_embed.conv.bias": "encoder.pos_conv_embed.bias",
    "encoder.layer_norm.weight": "encoder.layer_norm.weight",
    "encoder.layer_norm.bias": "encoder.layer_norm.bias",
    **{f"encoder.layers.{{}}.{name}.{p}": f"encoder.layers.{{}}.{name}.{p}" for p in ("weight", "bias") for name in (
        "attention.q_proj", "attention.k_proj", "attention.v_proj", "attention.out_proj", "layer_norm",
        "feed_forward.intermediate_dense", "feed_forward.output_dense", "final_layer_norm")},
    "masked_spec_embed": None,  # the vector that replaces masked frames in training
}

# the semantic quantizer's state dict (`CustomTokenizer`); its LSTM sits in mindbark's LSTM cell
QUANTIZER = {
    "lstm.weight_ih_l{}": "lstm.lstm.weight_ih_l{}",
    "lstm.weight_hh_l{}": "lstm.lstm.weight_hh_l{}",
    "lstm.bias_ih_l{}": "lstm.lstm.bias_ih_l{}",
    "lstm.bias_hh_l{}": "lstm.lstm.bias_hh_l{}",
    "intermediate.weight": "intermediate.weight",
    "intermediate.bias": "intermediate.bias",
    "fc.weight": "fc.weight",
    "fc.bias": "fc.bias",
}
