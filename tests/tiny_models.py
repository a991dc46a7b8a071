"""Tiny random-weight models the tests build themselves: a keras-hub BERT preset and TF Hub SavedModels."""

from __future__ import annotations

from pathlib import Path

WORDS = ("data scientist engineer software nurse teacher doctor driver manager analyst sales chef "
         "good bad great film movie boring fun the a of and is was very not").split()


def make_bert_preset(folder: Path, num_layers: int = 2, hidden_dim: int = 16, seed: int = 0) -> Path:
    """A 2-layer BERT saved in KerasHub preset format, with a small WordPiece vocabulary."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"],
             *list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")]
    vocab = list(dict.fromkeys(vocab))  # single letters also appear as words
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(vocab), num_layers=num_layers, num_heads=2,
                                             hidden_dim=hidden_dim, intermediate_dim=2 * hidden_dim,
                                             max_sequence_length=64, dropout=0.0)
    backbone.save_to_preset(str(folder))
    tokenizer.save_to_preset(str(folder))
    return folder


def make_hf_bert_folder(folder: Path, seed: int = 0) -> Path:
    """The tiny BERT of make_bert_preset with a Hugging Face tokenizer.json (WordPiece over the same
    vocabulary, lowercased, [CLS] a [SEP]) in place of KerasHub's, and its 64 positions as the length
    limit: a local folder loaded the way the bundled minilm is."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    make_bert_preset(folder, seed=seed)
    vocabulary = (folder / "assets" / "tokenizer" / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    vocab = {token: i for i, token in enumerate(vocabulary)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 64}')
    return folder


def make_hub_text_encoder(folder: Path, buckets: int = 97, dim: int = 8, seed: int = 0) -> Path:
    """A USE-style reusable SavedModel: strings -> (batch, dim), hashing words in the graph.

    Variables carry TF-style names such as "dense/kernel:0", like real TF Hub modules.
    """
    import tensorflow as tf

    tf.random.set_seed(seed)
    obj = tf.__internal__.tracking.AutoTrackable()
    obj.embeddings = tf.Variable(tf.random.normal([buckets, dim], seed=seed), name="embeddings/weights")
    obj.kernel = tf.Variable(tf.random.normal([dim, dim], seed=seed + 1), name="dense/kernel")
    obj.scale = tf.Variable(1.5, trainable=False, name="frozen/scale")

    @tf.function
    def call(texts, training=False):
        words = tf.strings.split(tf.strings.lower(texts))
        ids = tf.strings.to_hash_bucket_fast(words, buckets)
        vectors = tf.gather(obj.embeddings, ids)
        summed = tf.reduce_sum(vectors, axis=1)
        counts = tf.cast(tf.maximum(ids.row_lengths(), 1), tf.float32)[:, None]
        hidden = tf.matmul(summed / counts, obj.kernel) * obj.scale
        return tf.nn.dropout(hidden, 0.1) if training else hidden

    spec = tf.TensorSpec([None], tf.string)
    call.get_concrete_function(spec, training=True)
    call.get_concrete_function(spec, training=False)
    obj.__call__ = call
    obj.variables = [obj.embeddings, obj.kernel, obj.scale]
    obj.trainable_variables = [obj.embeddings, obj.kernel]
    obj.regularization_losses = []
    tf.saved_model.save(obj, str(folder))
    return folder


def make_hub_bert_pair(folder: Path, buckets: int = 97, dim: int = 8, length: int = 8) -> tuple[Path, Path]:
    """A LaBSE/BERT-style pair: a preprocess SavedModel (strings -> id dict) and an encoder (dict -> dict)."""
    import tensorflow as tf

    pre = tf.__internal__.tracking.AutoTrackable()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def preprocess(texts):
        words = tf.strings.split(tf.strings.lower(texts))
        ids = tf.strings.to_hash_bucket_fast(words, buckets - 1) + 1
        dense = ids.to_tensor(default_value=0, shape=[None, length])
        mask = tf.cast(dense > 0, tf.int32)
        return {"input_word_ids": tf.cast(dense, tf.int32), "input_mask": mask,
                "input_type_ids": tf.zeros_like(mask)}

    pre.__call__ = preprocess
    tf.saved_model.save(pre, str(folder / "preprocess"))

    enc = tf.__internal__.tracking.AutoTrackable()
    enc.embeddings = tf.Variable(tf.random.normal([buckets, dim], seed=3), name="word_embeddings/embeddings")
    enc.pooler = tf.Variable(tf.random.normal([dim, dim], seed=4), name="pooler_transform/kernel")

    @tf.function
    def encode(inputs, training=False):
        vectors = tf.gather(enc.embeddings, inputs["input_word_ids"])
        mask = tf.cast(inputs["input_mask"], tf.float32)[..., None]
        sequence = vectors * mask
        pooled = tf.tanh(tf.matmul(sequence[:, 0, :], enc.pooler))
        return {"pooled_output": pooled, "sequence_output": sequence, "default": pooled}

    specs = {"input_word_ids": tf.TensorSpec([None, length], tf.int32),
             "input_mask": tf.TensorSpec([None, length], tf.int32),
             "input_type_ids": tf.TensorSpec([None, length], tf.int32)}
    encode.get_concrete_function(specs, training=True)
    encode.get_concrete_function(specs, training=False)
    enc.__call__ = encode
    enc.variables = [enc.embeddings, enc.pooler]
    enc.trainable_variables = [enc.embeddings, enc.pooler]
    tf.saved_model.save(enc, str(folder / "encoder"))
    return folder / "encoder", folder / "preprocess"


class BagOfWords:
    """A deterministic stand-in encoder without Keras: unit vectors of hashed words (shared words, similar
    texts), for code that only calls encode()."""

    spec = name = "bag-of-words"

    def encode(self, texts, batch_size=64, progress=None):
        import numpy as np

        vectors = np.zeros((len(texts), 64), "float32")
        for row, text in enumerate(texts):
            for word in str(text).lower().split():
                vectors[row, sum(map(ord, word)) * 7 % 64] += 1.0
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
