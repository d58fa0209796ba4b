// Package fusion combines per-modality features into one prediction:
// cross-modal attention, the four fusion strategies, learnable modality
// weights and modality dropout with learned "missing" embeddings.
//
// Every modality m (names always in sorted order) arrives as a feature
// f_m [B, D_m] (the modality encoder's output, D_m = encoder_dim). Forward
// applies, in this order:
//
//  1. Missing handling (Config.MissingEmbedding, or any ModalityDropout
//     rate > 0): keep[b,m] = presence[b,m] × drop[b,m], where presence is
//     the data's input [B] (1 present, 0 missing) and drop is a per-sample
//     Bernoulli(1 − rate_m) draw in training (1 in evaluation). If the draw
//     removes every present modality of a sample, one present modality,
//     chosen uniformly, is kept. Then f_m ← keep·f_m + (1 − keep)·missing_m
//     with missing_m [D_m] a learned embedding (zeros at init). A sample
//     with no present modality is fused from missing embeddings alone.
//  2. Modality weights (Config.ModalityWeights): w = softmax(logits [M]),
//     logits starting at 0. Early, hybrid and hierarchical scale f_m by
//     M·w_m (weights averaging 1, so uniform weights change nothing); late
//     uses w_m to combine predictions. Off, w_m = 1/M fixed. Read trained
//     weights with ModalityWeights.
//  3. The strategy, ending in the fusion layer
//     proj(x) = Dropout(ReLU(Linear(x → Dim))) and the caller's Head.
//
// # Strategies
//
//	strategy      computes                                                      needs           attention maps
//	early         fused = proj([f_1, …, f_M]); out = head(fused)                any widths      none
//	late          z_m = proj_m(f_m); out = Σ_m w_m·head_m(z_m)                   any widths      none
//	hybrid        T = [f_1 … f_M] as tokens [B,M,D]; S = LN(T + MHA(T,T,T));    equal widths    "self" [B,H,M,M]
//	              fused = proj([mean_tokens S, f_1, …, f_M]); out = head(fused)
//	hierarchical  level 1: c_i = LN(f_i + MHA_i(q = f_i, kv = {f_j, j ≠ i}));   equal widths,   "cross.<m>" [B,H,1,M−1],
//	              level 2: S = LN(C + MHA(C,C,C)) over C = [c_1 … c_M];         M ≥ 2           "self" [B,H,M,M]
//	              fused = proj([mean_tokens S, f_1, …, f_M]); out = head(fused)
//
// Where [a, b] is concatenation along the feature axis, MHA is
// nn.MultiHeadAttention with Config.Heads heads (dropout Config.Dropout on
// the attention weights in training), LN is LayerNorm, and f_m are the
// features after steps 1 and 2.
//
//   - early is feature-level fusion of the encoder outputs: like the Python
//     design this mirrors, it concatenates the modality encoders' outputs
//     (after encoding — the Python enum's comment "fuse at feature level
//     before encoding" does not match its own code, which concatenates
//     encoder outputs; lsfuse does the same and says so). The Python early
//     layer is Linear-LayerNorm-GELU-Dropout; lsfuse's is Linear-ReLU-Dropout
//     for every strategy.
//   - late is decision-level fusion: one projection and one head per
//     modality, predictions (logits, regression values or token logits)
//     averaged with the modality weights. The Python design's "late" is its
//     cross-modal attention block instead; lsfuse keeps that for
//     hierarchical and makes late what the seed's table describes
//     (independent processing, interpretable per-modality decisions).
//   - hybrid is exactly the bench-small reference model's fusion
//     (../shared/bench/ref_torch.py): attention over modality tokens
//     (the "late"/interaction part) plus the raw features concatenated (the
//     "early" part). With Dim 128, 2 modalities of width 128 and a
//     Linear(128, 10) head it is Linear(384,128)-ReLU-Linear(128,10).
//   - hierarchical adds a level of cross-modal attention before the hybrid
//     block. With exactly two modalities each level-1 query has a single
//     key, so its weight is exactly 1 (level 1 becomes a learned map of the
//     other modality plus the residual); the level-2 "self" map is where
//     the weights vary. The Python design instead runs pairwise attention
//     and three residual MLP levels.
//
// # Parameters (under the caller's scope, "fusion" in pkg/model)
//
//	modality_weights [M]                      ModalityWeights
//	missing.<m> [D_m]                         missing handling
//	early.proj.{weight,bias}                  early
//	late.<m>.proj.{weight,bias}               late (heads: the caller's scopes)
//	attn.{q,k,v,out}_proj, norm, proj         hybrid, hierarchical level 2
//	cross.<m>.attn.*, cross.<m>.norm          hierarchical level 1
//
// All ops are differentiable with gradient-checked backward passes. The
// masking and weighting ops are nn.Kernels, and residuals use nn.Add and
// nn.Reshape: no Gorgonia broadcasting quirk sits on a gradient path, and no
// Gorgonia elementwise op runs in place over a buffer that a reshape view
// shares (G.Add(x, y) with x a G.Reshape output overwrote x's storage on
// every run, and a residual x + MHA(x) corrupted the attention weights'
// gradients: see nn.Reshape).
package fusion
