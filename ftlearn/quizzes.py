"""The end-of-lesson quizzes: a few short questions per lesson, multiple choice or a number (lessons 01-13).

`ftlearn.checks.check_quiz("04", answers)` marks them; this module holds only the questions, the
answers and what a learner reads: a nudge after a first wrong answer, a hint after a second, and a
one-paragraph explanation once the answer is right (or when they ask with `reveal=True`).
Questions are keyed by position: "q1", "q2", ...
"""

from __future__ import annotations

from dataclasses import dataclass

LETTERS = "abcdefgh"


@dataclass(frozen=True)
class Question:
    """One quiz question: multiple choice (`choices`, answer a letter) or a number within `tolerance`."""

    text: str
    answer: str | float
    explanation: str
    nudge: str
    hint: str
    choices: tuple[str, ...] = ()
    tolerance: float = 0.0

    @property
    def is_choice(self) -> bool:
        """True for a multiple-choice question (the answer is a letter)."""
        return bool(self.choices)


def _mc(text: str, choices: tuple[str, ...], answer: str, explanation: str, nudge: str, hint: str) -> Question:
    return Question(text, answer, explanation, nudge, hint, choices=choices)


def _num(text: str, answer: float, tolerance: float, explanation: str, nudge: str, hint: str) -> Question:
    return Question(text, answer, explanation, nudge, hint, tolerance=tolerance)


QUIZZES: dict[str, tuple[Question, ...]] = {
    "01": (
        _num(
            "A bigram model gives P(the | <s>) = 0.5, P(film | the) = 0.2 and P(</s> | film) = 0.1. What probability "
            "does it give the whole review 'the film' (end marker included)?",
            0.01,
            1e-9,
            "The chain rule writes the probability of a sequence as a product of next-word probabilities, each given "
            "its history; a bigram model cuts each history down to the previous word. So P = 0.5 × 0.2 × 0.1 = 0.01. "
            "The end marker counts too: without it the model would never learn that a review can stop there.",
            "The chain rule turns the probability of a sequence into something built from the three numbers given.",
            "Multiply the three conditional probabilities: one per predicted token, the end marker included.",
        ),
        _num(
            "On held-out reviews a model's mean log-probability is -2.0 nats per token. What is its perplexity?",
            7.389,
            0.01,
            "Perplexity is exp(-mean log p) = exp(2.0) ≈ 7.39: the model is as unsure as if it chose uniformly among "
            "about 7.4 words at every step. It is the exponential of the cross-entropy in nats, which is why lower "
            "is better and why a uniform model over V words has perplexity exactly V.",
            "Perplexity is built from the mean log-probability with a sign and an exponential.",
            "Negate the mean log-probability, then apply exp (natural logs, so e, not 2).",
        ),
        _mc(
            "A counted bigram model scores much better perplexity on its training reviews than on held-out ones. "
            "What is the main reason?",
            (
                "held-out reviews are longer",
                "perplexity divides by the vocabulary size, which differs between the two sets",
                "its counts come from the training text, so held-out bigrams it never saw get zero or tiny "
                "(smoothed) probability",
                "sampling temperature is applied only to held-out text",
            ),
            "c",
            "A counting model memorises the pairs it saw. On its own training text every bigram was counted, so "
            "every factor is reasonably large; on new text many pairs were never seen and get probability 0 "
            "(infinite perplexity) or only what add-k smoothing lends them. This gap between seen and unseen text is "
            "the first instance of overfitting in the course, and the motivation for models that generalise.",
            "Think about where the model's numbers come from, and what happens to a pair it never counted.",
            "Section 7, the unseen-word problem: what probability does an unseen bigram get?",
        ),
        _mc(
            "What does sampling with a temperature T < 1 do to the next-word distribution?",
            (
                "sharpens it: likely words become even more likely",
                "flattens it: rare words become more likely",
                "leaves it unchanged, only the random seed changes",
                "removes every word below probability T",
            ),
            "a",
            "Temperature divides the log-probabilities (or logits) by T before renormalising: p_i ∝ p_i^(1/T). With "
            "T < 1 the exponent is above 1, so large probabilities grow relative to small ones and sampling becomes "
            "more conservative; T → 0 approaches greedy decoding, T > 1 flattens the distribution.",
            "Write p_i^(1/T) for T = 0.5 on two probabilities, say 0.6 and 0.4, and renormalise.",
            "Dividing log-probabilities by a number below 1 makes their differences larger.",
        ),
    ),
    "02": (
        _num(
            "A classifier gives the correct class probability 0.25. What is this example's cross-entropy, in nats?",
            1.3863,
            0.001,
            "Cross-entropy for one example is -log p(correct) = -ln 0.25 = ln 4 ≈ 1.386 nats. Only the probability of "
            "the correct class enters; the rest of the distribution matters only through the softmax that shares "
            "probability mass among the classes.",
            "Cross-entropy looks at one number of the predicted distribution.",
            "Take the natural log of the correct class's probability and flip its sign.",
        ),
        _mc(
            "Why does a stable log-softmax subtract the largest logit m before exponentiating?",
            (
                "it changes the result slightly, but the gradient is better",
                "it is needed only on GPUs",
                "it makes the probabilities sum to 1",
                "it leaves the result exactly the same, and keeps exp from overflowing on large logits",
            ),
            "d",
            "softmax(z) = softmax(z - m) for any constant m, because the factor exp(-m) cancels between numerator "
            "and denominator. Choosing m = max(z) makes every exponent ≤ 0, so exp never overflows (exp(1000) is inf "
            "in float64), and log-softmax becomes (z - m) - log Σ exp(z - m), which is finite for any logits.",
            "Ask what subtracting a constant from every logit does to the softmax, and to exp of a large number.",
            "Write softmax(z - m) out: the factor exp(-m) appears above and below the fraction line.",
        ),
        _num(
            "A freshly initialised 10-class classifier predicts the uniform distribution. What cross-entropy (nats) "
            "should its first batch show?",
            2.3026,
            0.001,
            "Uniform predictions give every class probability 1/C, so the loss is -ln(1/C) = ln C = ln 10 ≈ 2.303. "
            "Checking that a new model starts near ln C is a cheap sanity test: a first loss far above it means the "
            "initial logits are too large or the labels are wrong.",
            "Every class gets the same probability: which one, with 10 classes?",
            "The loss is -ln(1/10).",
        ),
        _mc(
            "In a batch of 8 targets, 3 are -100 (ignore_index). The 'mean' reduction divides the summed loss by:",
            ("8", "5", "3", "the number of classes"),
            "b",
            "Positions labelled -100 are padding or prompt tokens that must not be learned; they leave the sum *and* "
            "the count, so the mean is over the 5 real targets. Dividing by 8 would make the loss depend on how much "
            "padding a batch happens to hold.",
            "Ignored positions must have no effect at all on the loss.",
            "Leave the ignored rows out of the count as well as out of the sum.",
        ),
    ),
    "03": (
        _mc(
            "One example, probabilities p = (0.7, 0.2, 0.1) after the softmax, correct class 0. The gradient of its "
            "cross-entropy with respect to the three logits is:",
            ("(-0.7, 0.0, 0.0)", "(0.3, -0.2, -0.1)", "(0.7, 0.2, 0.1)", "(-0.3, 0.2, 0.1)"),
            "d",
            "For softmax followed by cross-entropy the gradient at the logits is p - y, with y the one-hot target: "
            "(0.7 - 1, 0.2 - 0, 0.1 - 0) = (-0.3, 0.2, 0.1). Gradient descent subtracts it, so the correct logit goes "
            "up and the others go down, each in proportion to how wrong it is.",
            "The gradient is the difference between two distributions.",
            "Subtract the one-hot target (1, 0, 0) from p.",
        ),
        _mc(
            "You halve h in a central-difference gradient check (f(x+h) - f(x-h)) / 2h. Its truncation error shrinks "
            "by about a factor of:",
            ("4", "2", "1 (it does not change)", "8"),
            "a",
            "The Taylor terms of even order cancel in f(x+h) - f(x-h), so the central difference's error is O(h²): "
            "halving h divides it by about 4. The one-sided difference (f(x+h) - f(x)) / h is only O(h). (Make h too "
            "small, though, and floating-point rounding takes over.)",
            "What power of h does the central difference's error go with?",
            "Its error is proportional to h squared.",
        ),
        _mc(
            "From the very first steps the training loss jumps up and down and then grows. What is the most likely "
            "cause?",
            (
                "the model has too few parameters",
                "the learning rate is too small",
                "the learning rate is too large",
                "it needs more epochs",
            ),
            "c",
            "A step of lr × gradient overshoots the minimum when lr is too large: each update lands on the other side "
            "of the valley, higher up, and the loss oscillates and diverges. Too small a learning rate gives the "
            "opposite picture, a smooth but very slow decrease. Section 7 shows all three regimes on the same model.",
            "Think about what a too-long step does near a minimum.",
            "Overshooting the minimum makes the loss oscillate and grow.",
        ),
    ),
    "04": (
        _num(
            "Adam's first step (t = 1, m and v start at 0), gradient g = 0.5, lr = 0.001, eps negligible. How far "
            "does the parameter move (the size of the step)?",
            0.001,
            1e-7,
            "At t = 1 the bias corrections give m̂ = g and v̂ = g², so the step is lr · g / |g| = lr = 0.001, whatever "
            "the gradient's size. That is Adam's defining trait: the step size is set by the learning rate and the "
            "gradient's sign and consistency, not by its scale.",
            "Work out m̂ and v̂ after one step, with the bias corrections.",
            "m̂ = g and v̂ = g² at t = 1, so m̂ / sqrt(v̂) has size 1.",
        ),
        _mc(
            "How does AdamW apply weight decay λ, compared with Adam plus an L2 penalty?",
            (
                "it adds λθ to the gradient, which Adam then divides by sqrt(v̂)",
                "it shrinks the weights directly, θ ← θ(1 - lr·λ), outside Adam's per-parameter scaling",
                "it applies decay only during warm-up",
                "there is no difference, the names are synonyms",
            ),
            "b",
            "With L2, the decay term λθ goes into the gradient and is then divided by sqrt(v̂), so parameters with "
            "large gradients are hardly decayed. AdamW decouples it: every weight shrinks by the same factor "
            "(1 - lr·λ) each step, as torch.optim.AdamW does; this is what fine-tuning recipes mean by weight decay.",
            "Ask where the decay term enters: before or after the division by sqrt(v̂)?",
            "Decoupled means the decay never passes through m, v or sqrt(v̂).",
        ),
        _num(
            "A schedule warms up linearly over 100 steps, then decays linearly to 0 at step 1000. What is the "
            "learning-rate multiplier at step 550?",
            0.5,
            1e-9,
            "After warm-up the multiplier falls from 1 at step 100 to 0 at step 1000, a span of 900 steps; step 550 "
            "is halfway, (1000 - 550) / 900 = 0.5. Warm-up protects the first steps, when Adam's v is still a poor "
            "estimate and the new head's gradients are large.",
            "Step 550 is past the warm-up: where does it sit in the decay phase?",
            "The decay runs over total_steps - warmup_steps = 900 steps.",
        ),
    ),
    "05": (
        _mc(
            "What does one step of training byte-pair encoding do?",
            (
                "merges the most frequent pair of adjacent symbols into one new symbol, everywhere it occurs",
                "splits every word at its most frequent character",
                "removes the least frequent word from the vocabulary",
                "assigns each word an id by frequency",
            ),
            "a",
            "BPE starts from characters (or bytes) and repeatedly counts adjacent pairs, weighted by word frequency, "
            "and fuses the most frequent pair into a new symbol. Each merge adds one vocabulary entry; frequent words "
            "end up as one token, rare ones as several sub-word pieces, and nothing is ever out of vocabulary.",
            "BPE builds its vocabulary bottom-up, from characters.",
            "It counts adjacent symbol pairs and merges one of them.",
        ),
        _num(
            "A batch holds two reviews of 3 and 8 tokens, padded to the longest in the batch. What fraction of its "
            "token slots is padding?",
            0.3125,
            1e-6,
            "Padding to the longest gives 2 × 8 = 16 slots for 3 + 8 = 11 real tokens, so 5 / 16 = 0.3125 of the "
            "compute goes to pads. Grouping reviews of similar length into batches shrinks this waste, which is what "
            "length-grouped sampling does (lesson 11 times it).",
            "Count the slots the padded batch has, and how many hold real tokens.",
            "Slots = batch size × longest length; waste = 1 - real / slots.",
        ),
        _mc(
            "What does attention_mask = 0 at a position tell BERT?",
            (
                "the token there is masked for masked-language modelling",
                "the token should be predicted by the classifier",
                "the token is a [SEP] separator",
                "the position is padding: no token attends to it, so it cannot change the real tokens' vectors",
            ),
            "d",
            "The mask marks real tokens with 1 and padding with 0. Inside attention, the scores of keys with mask 0 "
            "are set to -inf before the softmax, so they get weight exactly 0: a review gives the same outputs "
            "whether it is padded to 10 or to 512 tokens.",
            "Padding must be invisible to the real tokens.",
            "Mask 0 means the position is padding, which attention must ignore.",
        ),
    ),
    "06": (
        _mc(
            "A model divides its attention scores by d instead of √d. Its head size is d = 64, and at the start its "
            "queries and keys have independent entries of variance 1. How are a query's weights over 32 keys spread?",
            (
                "nearly one-hot: the largest weight is close to 1, as with no scale at all",
                "nearly uniform: the scores' spread is 1/8, so each weight is close to 1/32",
                "exactly as with √d: the softmax renormalises the weights whatever the scale",
                "not at all: scores this small underflow, and the weights come out as NaN",
            ),
            "b",
            "q·k has standard deviation √d = 8; divided by d = 64 it has 8/64 = 1/8. exp of scores that differ by "
            "about 0.1 is nearly the same for every key, so each weight is close to 1/32: a query reads almost every "
            "key alike, the opposite of the unscaled case. The softmax renormalises the weights' sum, not their "
            "spread, and small scores are harmless (exp(0) = 1). The right scale is the one that gives the scores "
            "standard deviation 1 at every width: √d.",
            "Work out the scores' standard deviation first, as the lesson did for √d.",
            "The spread of q·k is √d; divide it by d and see how different exp of such scores can be.",
        ),
        _mc(
            "BERT (no causal mask) gets a batch padded on the right, without its attention mask. Do the real tokens' "
            "hidden states change?",
            (
                "no: the padding comes after the real tokens, so no real token reads it",
                "yes: nothing hides the [PAD] keys, so every real token also reads them",
                "no: a [PAD] token's embedding is zero, so its value vector adds nothing",
                "only [CLS]'s, since it is the one position that reads the whole row",
            ),
            "b",
            "Position alone hides nothing from an encoder: without a causal mask every query may read every key, "
            "later ones included, so the [PAD] keys take some weight in every real token's softmax and their values "
            "enter its output. Lesson 06 measured it on the shortest review (1.36 without the mask, 0 with it). "
            "Padding after the real tokens is harmless only with a causal mask, as in GPT-2: there the pads are in "
            "every real token's future. [PAD]'s embedding is not zero, and it gets a position and a segment "
            "embedding too.",
            "What hides a later position from a query in GPT-2, and does BERT have it?",
            "Without a causal mask, the only thing that hides a key is the attention mask.",
        ),
        _num(
            "bert-base's layer has 12 heads of size 64 (C = 768). You rebuild it with 24 heads of size 32, for a batch "
            "of 8 reviews of 512 tokens. By what factor does the number of attention weights (softmax outputs) the "
            "layer computes, and autograd keeps for the backward pass, change?",
            2,
            0,
            "Each head has its own T × T matrix of weights, so a layer computes B·H·T·T of them: doubling H doubles "
            "them, whatever the head size. The parameters do not change (4C² + 4C + 2CF + F + C + 4C has no H), and "
            "neither do the FLOPs of the attention products (4TC per token: each head's two products cost 2Td "
            "each, and H·d = C). Lesson 11's activation count has a term in 5·H·T² per example for this reason.",
            "How many weight matrices does a layer's attention compute, and what is the size of each?",
            "One T × T matrix per head and per example: count them with H = 12 and with H = 24.",
        ),
        _mc(
            "Lesson 06 saw GPT-2's residual stream grow block after block, while BERT's did not accumulate: each layer "
            "hands on a LayerNorm's output, whose size its learned scale sets. In a pre-LN stack of 48 blocks the "
            "stream has grown large by block 48. What does that block's attention read?",
            (
                "a normalised copy: ln_1 rescales what attention reads, not the stream itself",
                "the large stream itself, so its softmax saturates as if the √d scale were missing",
                "a stream that the causal mask has shrunk, since each block hides later positions",
                "a stream divided by 48, since each residual addition is scaled down by the depth",
            ),
            "a",
            "In pre-LN, h = x + Attn(LN(x)): the sub-layer reads LN(x), whose size its LayerNorm's learned scale "
            "sets however large x has grown, while x itself is passed on untouched and keeps growing. That is why a "
            "pre-LN model needs one more LayerNorm after its last block (GPT-2's ln_f) before the output layer. The "
            "causal mask changes which positions are read, not their size, and nothing divides the additions by the "
            "depth in the forward pass.",
            "Write one pre-LN block as a formula: which tensor does Attn receive?",
            "In x + Attn(LN(x)), the LayerNorm acts on Attn's input only.",
        ),
        _num(
            "Per token, a layer spends 2(4C² + 2CF) FLOPs on its weights and 4TC on attention's two products over T "
            "tokens. A model with C = 768 uses a wider feed-forward network, F = 8C. At what length T are the two "
            "terms equal?",
            7680,
            0,
            "With F = 8C the weights cost 2(4C² + 16C²) = 40C² per token, and 40C² = 4TC gives T = 10C = 7680. "
            "Attention's share is then T / (T + 10C): a wider feed-forward network makes attention's share smaller "
            "at the same length, about 6% at 512 tokens instead of bert-base's 10% (T / (T + 6C) with F = 4C).",
            "Write the weights' term with F = 8C, then set it equal to 4TC.",
            "2(4C² + 2C·8C) = 40C²; solve 40C² = 4TC for T.",
        ),
        _mc(
            "With grouped-query attention (H query heads, H_kv < H key/value heads, each shared by H/H_kv query "
            "heads), what gets smaller?",
            (
                "the FLOPs of the attention products and of W_K, W_V: fewer heads score keys",
                "nothing: the same weights are only cut into heads in a different way",
                "only W_Q and W_O, since the query heads are the ones that are grouped",
                "W_K, W_V and the keys and values kept; the attention products do not",
            ),
            "d",
            "Each K/V head serves several query heads, so W_K and W_V shrink to C × H_kv·d (and so does the cache of "
            "keys and values kept during generation). The work of attention is per query head: each of the H heads "
            "compares its query with T keys and mixes T values, 4·T·H·d = 4TC FLOPs per token, as without grouping.",
            "Count per query head: how many keys does it compare with, however the keys are shared?",
            "Sharing K and V saves storage and projection weights, not the per-head products.",
        ),
    ),
    "07": (
        _mc(
            "In one training step, where does clip_grad_norm_ go?",
            (
                "before the forward pass",
                "after optimizer.zero_grad()",
                "after optimizer.step()",
                "between loss.backward() and optimizer.step()",
            ),
            "d",
            "Clipping rescales the gradients that backward wrote, and must do so before the optimizer reads them. "
            "After the step it changes nothing the step used; after zero_grad there is nothing left to clip.",
            "Clipping acts on the gradients: when do they exist, and when are they used?",
            "The gradients exist after backward and are consumed by step.",
        ),
        _num(
            "A confusion matrix [[TN, FP], [FN, TP]] = [[40, 10], [5, 45]]. What is the precision for the positive "
            "class?",
            0.8182,
            0.001,
            "Precision = TP / (TP + FP) = 45 / 55 ≈ 0.818: of the reviews called positive, how many were. Recall, "
            "TP / (TP + FN) = 45 / 50 = 0.9, asks instead how many positives were found. Rows are the true class, "
            "columns the prediction.",
            "Precision asks about the reviews the model *called* positive.",
            "Divide TP by the predicted positives, TP + FP (column 1).",
        ),
        _mc(
            "Why must mean pooling use the attention mask?",
            (
                "otherwise the padding positions' vectors enter the average, and a review's vector depends on how "
                "much padding its batch gave it",
                "it does not matter, padding vectors are zero",
                "the mask makes pooling faster",
                "BERT's [CLS] token needs it",
            ),
            "a",
            "The hidden states at padded positions are not zero: they are whatever the encoder computes there. "
            "Averaging them in would change a review's representation with its batch's longest review; multiplying "
            "by the mask and dividing by the count of real tokens averages the review alone.",
            "Are the hidden vectors at padded positions zero?",
            "The mean must run over real tokens only, whatever the padding.",
        ),
    ),
    "08": (
        _mc(
            "In today's TrainingArguments, what does warmup_steps=0.1 mean?",
            (
                "0 warm-up steps (it is rounded down)",
                "a warm-up learning rate of 0.1",
                "warm-up over 10% of the total training steps: a float below 1 is a ratio",
                "warm-up for 0.1 epochs",
            ),
            "c",
            "Recent transformers versions read a float below 1 in warmup_steps as a fraction of the total steps, "
            "replacing the older warmup_ratio argument. Notebook 07's warm-up ratio of 0.1 maps onto it directly.",
            "Look at the mapping table of section 3.",
            "A float below 1 is read as a fraction of something.",
        ),
        _mc(
            "What does a compute_metrics function receive, and what must it do first?",
            (
                "an EvalPrediction with the logits and the label ids; it takes the argmax of the logits to get "
                "predicted classes",
                "the model; it must run it on the validation set",
                "the loss only; it returns exp(loss)",
                "the tokenizer and the raw texts",
            ),
            "a",
            "The Trainer runs evaluation itself and hands compute_metrics the stacked predictions (logits, one row "
            "per review) and label_ids. Metrics such as accuracy and F1 need classes, so the first line is an "
            "argmax over the last axis; then it returns a dict of named numbers.",
            "The Trainer does the evaluation loop itself.",
            "It gets logits and labels: logits must become class predictions.",
        ),
        _num(
            "Early stopping with patience 2 watches the validation loss, lower is better. Per epoch it reads 0.50, "
            "0.42, 0.45, 0.44, 0.40, ... After which epoch does training stop?",
            4,
            0,
            "The best loss so far is 0.42 at epoch 2. Epoch 3 (0.45) and epoch 4 (0.44) do not improve on it, two "
            "evaluations in a row, so training stops after epoch 4 and never sees epoch 5's 0.40; with "
            "load_best_model_at_end the epoch-2 checkpoint is the one kept. Patience trades a little compute for "
            "protection against stopping on one noisy epoch.",
            "Find the best value so far and count the evaluations without improvement.",
            "No improvement on 0.42 for two evaluations in a row: which epoch is the second?",
        ),
    ),
    "09": (
        _mc(
            "In the causal-LM loss, the logits at position t are scored against:",
            ("the token at position t", "the token at position t + 1", "the token at position t - 1", "the last token"),
            "b",
            "Position t has seen tokens 1..t and predicts what comes next, so its logits are compared with token "
            "t+1: the logits drop their last position and the labels their first. Without the shift the model would "
            "only learn to copy its input.",
            "A language model predicts what comes next.",
            "Shift: drop the last logits and the first label.",
        ),
        _num(
            "A review of 10 tokens, no padding: how many positions contribute to its causal-LM loss?",
            9,
            0,
            "After the shift there are T - 1 = 9 (prediction, target) pairs: the first token is never predicted "
            "(nothing precedes it) and the last position has no next token to be scored on.",
            "Count the (prediction, next token) pairs.",
            "The shift removes one position.",
        ),
        _num(
            "Two test batches: mean loss 2.0 nats over 100 tokens, and 3.0 nats over 300 tokens. What is the "
            "perplexity over all 400 tokens?",
            15.643,
            0.01,
            "The mean loss per token weights each batch by its tokens: (2.0 × 100 + 3.0 × 300) / 400 = 2.75, and the "
            "perplexity is exp(2.75) ≈ 15.64. Averaging the two batch means (2.5) or the two perplexities would give "
            "other, wrong numbers.",
            "Each token should count once, whichever batch it is in.",
            "Weight each batch's mean loss by its token count, average, then take exp once.",
        ),
        _mc(
            "What does top-p (nucleus) sampling with p = 0.9 keep?",
            (
                "every token whose probability is at least 0.9",
                "the most likely token, 90% of the time",
                "the 90 most likely tokens",
                "the smallest set of most likely tokens whose probabilities add up to at least 0.9",
            ),
            "d",
            "Top-p sorts the tokens by probability and keeps the shortest prefix whose cumulative probability reaches "
            "p, then renormalises. The number kept adapts to the model's certainty: one or two tokens when it is "
            "sure, many when it is not, unlike top-k's fixed count.",
            "Top-p is not a threshold on each probability.",
            "Sort, take the running sum, keep the shortest prefix that reaches p.",
        ),
    ),
    "10": (
        _mc(
            "Why does GPT-2's classifier read the hidden state of the last real token?",
            (
                "it is the end-of-text token, which is trained for classification",
                "the first token is always padding",
                "attention is causal, so only the last token has seen the whole review",
                "it is the cheapest to compute",
            ),
            "c",
            "In a decoder, h_t depends on tokens 1..t only. The first position has seen one token; the last real one "
            "has seen them all, so it is the one summary of the review the model offers. BERT can use [CLS] at the "
            "start because its attention runs in both directions.",
            "Which positions has each hidden state seen, in a causal model?",
            "h_t depends only on tokens 1..t.",
        ),
        _mc(
            "With pad = eos, a review whose own text ends with the end-of-text token is pooled at:",
            (
                "the token before it: the model finds the last token as the last position that is not the pad id, so "
                "it cannot tell that eos from padding",
                "its end-of-text token",
                "the first token",
                "a random position",
            ),
            "a",
            "The classifier locates each row's last token from input_ids != pad_token_id. When pad and eos share an "
            "id, a genuine trailing eos looks like padding and is skipped, so pooling lands one token earlier. "
            "Usually harmless, but it is why pad = eos is a convenience with a catch, and why the data must not end "
            "reviews with eos.",
            "How does the model know where a row's real tokens end?",
            "It compares input_ids with the pad id; what if a real token has that id?",
        ),
        _mc(
            "You pad on the left instead of the right, with default position ids. Why do the padded rows' logits "
            "change, although the same last token is pooled?",
            (
                "left padding changes the tokenizer's vocabulary",
                "the classifier head is re-initialised",
                "attention masks are ignored with left padding",
                "the real tokens get position numbers shifted by the number of pads, so their position embeddings "
                "differ",
            ),
            "d",
            "Default position ids run 0, 1, 2, ... over every slot, pads included. With left padding the first real "
            "token sits at position (number of pads) instead of 0, so GPT-2 adds other position embeddings and the "
            "hidden states change. Passing position_ids = cumsum(attention_mask) - 1 gives the real tokens 0, 1, 2, "
            "... again, and the logits match.",
            "What besides the token itself goes into a position's input vector?",
            "Position embeddings: which number does the first real token get?",
        ),
    ),
    "11": (
        _num(
            "Full fine-tuning with fp32 AdamW keeps weights, gradients and Adam's two moments. How many GB "
            "(10^9 bytes) of training state does a 110-million-parameter model need, before activations?",
            1.76,
            0.01,
            "Four fp32 numbers of 4 bytes per parameter, 16 bytes in all: 16 × 110e6 = 1.76e9 bytes. Inference needs "
            "only the weights, 4 bytes per parameter; mixed-precision recipes move these bytes around more than they "
            "remove them, which is why a 7B model does not fit one 80 GB GPU for full fine-tuning.",
            "Count the numbers kept per parameter, and the bytes per number.",
            "Weight, gradient, m and v: four fp32 values, 16 bytes per parameter.",
        ),
        _mc(
            "Gradient accumulation over k micro-batches gives exactly the large batch's update when:",
            (
                "you call optimizer.step() after every micro-batch",
                "each micro-batch loss is scaled so the summed gradients equal the big batch's mean (divide by k for "
                "equal sizes, weight by tokens otherwise) and you step once",
                "the learning rate is multiplied by k",
                "it never does, it is an approximation",
            ),
            "b",
            "backward adds into .grad, so scaling each micro-batch's mean loss by its share of the whole batch and "
            "stepping once leaves the full batch's mean gradient. With unequal micro-batches (token-level losses "
            "with padding), the weights must be the token counts, not 1/k; and dropout or batch statistics must "
            "behave the same for the equality to be exact.",
            "backward adds gradients up: what must each micro-batch contribute?",
            "Scale each micro-batch's loss by its share of the whole batch, then step once.",
        ),
        _num(
            "Activation checkpointing recomputes each layer's forward during backward. If backward costs about twice "
            "the forward, by what factor does a training step's compute grow?",
            1.333,
            0.01,
            "A step is forward (1) + backward (2) = 3 units; recomputing the forward adds 1, so 4 / 3 ≈ 1.33 times "
            "the compute, in exchange for storing only each layer's input instead of all its activations. Use it when "
            "memory, not compute, is what stops you.",
            "Count a step in forward-pass units, with and without the recomputation.",
            "Without: 1 + 2 = 3 units. With: one more forward.",
        ),
    ),
    "12": (
        _num(
            "LoRA of rank r = 8 wraps one 768 × 768 linear layer (d_in = d_out = 768). How many parameters does it "
            "train for that layer?",
            12288,
            0.5,
            "A is r × d_in and B is d_out × r, so r (d_in + d_out) = 8 × 1536 = 12,288, against 589,824 in W itself: "
            "about 2%. The frozen W still takes memory for its weights, but needs no gradient and no Adam moments, "
            "which is where 12 of full fine-tuning's 16 bytes per parameter went.",
            "Count the entries of the two small matrices whose product has W's shape.",
            "A is (r, d_in), B is (d_out, r): add their sizes.",
        ),
        _mc(
            "Why does LoRA start B at zero and A at random, and not both at random?",
            (
                "so that training is faster",
                "so that B A = 0: the wrapped model starts exactly as the pretrained one, and A's randomness still "
                "lets B's gradient be non-zero",
                "because peft requires it",
                "so that the merged weight has a smaller norm",
            ),
            "b",
            "With B = 0 the update B A is zero, so the first forward equals the pretrained model's, and fine-tuning "
            "starts from what pretraining learned rather than from noise added to every wrapped layer. B's gradient "
            "is built from x Aᵀ (the input times Aᵀ), so a random A makes it non-zero; if both were zero, neither "
            "would ever move.",
            "What should the wrapped model compute before its first training step?",
            "Think about B A at step 0, and about which gradient depends on which matrix.",
        ),
        _mc(
            "In distillation the soft-target KL is computed at temperature τ and multiplied by τ². Why τ²?",
            (
                "to make the loss positive",
                "to undo the softmax",
                "softening the logits by τ shrinks the soft loss's gradients by about 1 / τ², so τ² keeps them on the "
                "scale of the hard-label loss",
                "because KL divergence is quadratic",
            ),
            "c",
            "Dividing both sets of logits by τ flattens the distributions, and the gradient of the KL term with "
            "respect to the student's logits scales like 1 / τ² once τ is large. Multiplying by τ² keeps the soft "
            "and hard terms comparable, so the mixing weight means the same thing whatever τ you pick.",
            "What happens to the size of the soft loss's gradient when τ grows?",
            "The gradient of the soft term with respect to the logits shrinks like 1 / τ².",
        ),
    ),
    "13": (
        _mc(
            "A test set holds 90 texts of class A and 10 of class B. A model answers A for every text. Which figure "
            "shows that it is useless?",
            (
                "its accuracy, 0.90",
                "its macro F1, about 0.47: class B's F1 is 0",
                "its recall on class A, 1.0",
                "none: 0.90 is a good model",
            ),
            "b",
            "Accuracy counts texts, so the large class decides it: 0.90 here, for a model that never says B. The "
            "macro F1 averages the classes' F1 with equal weight: A's F1 is 2 × 90 / (2 × 90 + 10) ≈ 0.95, B's is 0 "
            "(never predicted, never right), and their mean is about 0.47. Read the macro F1 and each class's recall "
            "whenever the classes are unequal.",
            "Which of these figures gives the small class as much say as the large one?",
            "Work out each class's F1 for a model that always says A, then average them.",
        ),
        _num(
            "A training set holds 600 texts of 'trivia', 300 of 'emotion' and 100 of 'psychology'. What 'balanced' "
            "weight does 'psychology' get in the loss: N / (K n_k), with K the number of classes and n_k its texts?",
            3.333,
            0.01,
            "N / (K n_k) = 1000 / (3 × 100) ≈ 3.33, while trivia gets 1000 / 1800 ≈ 0.56: a mistake on a psychology "
            "text costs six times one on a trivia text, so the three classes weigh the same in the summed loss (each "
            "n_k × w_k is N / K). A weighted loss changes what the model is pushed to get right, not what it has seen; "
            "whether it helps the small class's recall, and at what cost to the large one's precision, is what lesson "
            "13 measures.",
            "Put the counts into N / (K n_k).",
            "N = 1000 texts, K = 3 classes, n_k = 100.",
        ),
        _mc(
            "In a confusion matrix (rows: true class, columns: predicted), the row of class 'psychology' is 10, 2, 12 "
            "(predicted ai, psychology, emotion). What does it say?",
            (
                "the model is good at psychology: 10 texts were found",
                "psychology's recall is 2 / 24: most of its texts are taken for emotion or ai, so the model has not "
                "learned what sets psychology apart",
                "psychology's precision is 2 / 24",
                "psychology is the largest class",
            ),
            "b",
            "A row holds where the texts of one true class went. Only the diagonal cell (2) is right, so recall is "
            "2 / 24 ≈ 0.08; the 12 in the emotion column is the confusion to look at first: read some of those texts "
            "(they may be mislabelled, or the two topics may really overlap) before changing the model. Precision "
            "would read the psychology *column*: of the texts predicted psychology, how many were.",
            "Which cell of the row is the right answer, and what is the row's total?",
            "The diagonal is right; the rest of the row is where psychology's texts were sent.",
        ),
    ),
}


def quiz(lesson: str | int) -> tuple[Question, ...]:
    """The questions of a lesson ("04" or 4); ValueError names the lessons that have a quiz."""
    key = f"{int(lesson):02d}" if str(lesson).strip().isdigit() else str(lesson)
    if key not in QUIZZES:
        raise ValueError(f"no quiz for lesson {lesson!r}; lessons with a quiz: {', '.join(QUIZZES)}")
    return QUIZZES[key]
