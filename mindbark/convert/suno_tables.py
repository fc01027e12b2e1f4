"""Name tables from Suno's original checkpoints to mindbark's sub-model files.

Suno's `bark` package keeps nanoGPT's names (`transformer.h.N.attn.c_attn`); facebookresearch's EnCodec nests each
convolution twice (`decoder.model.N.conv.conv`, `.convtr.convtr`) and keeps codebooks under `quantizer.vq`. Its
layer indices are the ones `transformers` kept, so index N maps to `decoder.layers.N`. As in `tables.py`, `{}`
matches a number and a `None` destination drops the tensor knowingly.
"""

_GPT_BLOCK = {
    "transformer.h.{}.ln_1.weight": "h.{}.ln_1.weight",
    "transformer.h.{}.ln_1.bias": "h.{}.ln_1.bias",
    "transformer.h.{}.ln_2.weight": "h.{}.ln_2.weight",
    "transformer.h.{}.ln_2.bias": "h.{}.ln_2.bias",
    "transformer.h.{}.attn.c_attn.weight": "h.{}.attn.c_attn.weight",
    "transformer.h.{}.attn.c_attn.bias": "h.{}.attn.c_attn.bias",
    "transformer.h.{}.attn.c_proj.weight": "h.{}.attn.c_proj.weight",
    "transformer.h.{}.attn.c_proj.bias": "h.{}.attn.c_proj.bias",
    "transformer.h.{}.attn.bias": None,  # causal mask buffer, saved by torch without scaled_dot_product_attention
    "transformer.h.{}.mlp.c_fc.weight": "h.{}.mlp.c_fc.weight",
    "transformer.h.{}.mlp.c_fc.bias": "h.{}.mlp.c_fc.bias",
    "transformer.h.{}.mlp.c_proj.weight": "h.{}.mlp.c_proj.weight",
    "transformer.h.{}.mlp.c_proj.bias": "h.{}.mlp.c_proj.bias",
    "transformer.wpe.weight": "wpe.weight",
    "transformer.ln_f.weight": "ln_f.weight",
    "transformer.ln_f.bias": "ln_f.bias",
}

CAUSAL = {
    **_GPT_BLOCK,
    "transformer.wte.weight": "wte.weight",
    "lm_head.weight": "lm_head.weight",
}

FINE = {
    **_GPT_BLOCK,
    "transformer.wtes.{}.weight": "wtes.{}.weight",
    "lm_heads.{}.weight": None,  # Suno ties head i to wtes[i + 1]; checked equal before dropping
}

# weight norm (weight_g / weight_v) is folded into `.weight` before this table applies
CODEC = {
    "decoder.model.{}.conv.conv.weight": "decoder.layers.{}.conv.weight",
    "decoder.model.{}.conv.conv.bias": "decoder.layers.{}.conv.bias",
    "decoder.model.{}.convtr.convtr.weight": "decoder.layers.{}.conv.weight",
    "decoder.model.{}.convtr.convtr.bias": "decoder.layers.{}.conv.bias",
    "decoder.model.{}.block.{}.conv.conv.weight": "decoder.layers.{}.block.{}.conv.weight",
    "decoder.model.{}.block.{}.conv.conv.bias": "decoder.layers.{}.block.{}.conv.bias",
    "decoder.model.{}.shortcut.conv.conv.weight": "decoder.layers.{}.shortcut.conv.weight",
    "decoder.model.{}.shortcut.conv.conv.bias": "decoder.layers.{}.shortcut.conv.bias",
    "decoder.model.{}.lstm.weight_ih_l{}": "decoder.layers.{}.lstm.weight_ih_l{}",
    "decoder.model.{}.lstm.weight_hh_l{}": "decoder.layers.{}.lstm.weight_hh_l{}",
    "decoder.model.{}.lstm.bias_ih_l{}": "decoder.layers.{}.lstm.bias_ih_l{}",
    "decoder.model.{}.lstm.bias_hh_l{}": "decoder.layers.{}.lstm.bias_hh_l{}",
    "quantizer.vq.layers.{}._codebook.embed": "quantizer.layers.{}.codebook.embed",
    # training-time codebook statistics
    "quantizer.vq.layers.{}._codebook.embed_avg": None,
    "quantizer.vq.layers.{}._codebook.cluster_size": None,
    "quantizer.vq.layers.{}._codebook.inited": None,
}

# the encoder goes to a file of its own (`codec_encoder`), which generation never loads
CODEC_ENCODER = {
    "encoder.model.{}.conv.conv.weight": "encoder.layers.{}.conv.weight",
    "encoder.model.{}.conv.conv.bias": "encoder.layers.{}.conv.bias",
    "encoder.model.{}.block.{}.conv.conv.weight": "encoder.layers.{}.block.{}.conv.weight",
    "encoder.model.{}.block.{}.conv.conv.bias": "encoder.layers.{}.block.{}.conv.bias",
    "encoder.model.{}.shortcut.conv.conv.weight": "encoder.layers.{}.shortcut.conv.weight",
    "encoder.model.{}.shortcut.conv.conv.bias": "encoder.layers.{}.shortcut.conv.bias",
    "encoder.model.{}.lstm.weight_ih_l{}": "encoder.layers.{}.lstm.weight_ih_l{}",
    "encoder.model.{}.lstm.weight_hh_l{}": "encoder.layers.{}.lstm.weight_hh_l{}",
    "encoder.model.{}.lstm.bias_ih_l{}": "encoder.layers.{}.lstm.bias_ih_l{}",
    "encoder.model.{}.lstm.bias_hh_l{}": "encoder.layers.{}.lstm.bias_hh_l{}",
}
