"""The image and text diffusions (ST2I, SI2T): their data, training, the Engine's arrows with bad
input refused, and the metrics of generated images and captions."""
import numpy as np
import pytest
import torch

import sd3core.models.clip

from conftest import fit_steps
from sd3core.diffusion import truncate
from sd3core.evaluate import (caption_scores, faithfulness, frechet_distance, relation_correctness,
                              retrieval_bound, scene_graph_f1, true_of)
from sd3core.graph import SceneGraph, SGObject, SGRelation
from sd3core.models import caption_grammar, image_diffusion, text_diffusion, vqvae
from sd3core.models.conditioning import Transformer
from sd3core.models.detector import make_detections
from sd3core.pipeline import CONDITION_CACHE_SIZE, Engine, image_agreement, set_threads
from sd3core.world.build import read_split


def test_truncate_keeps_the_most_likely_classes_up_to_the_mass():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = truncate(logits, 0.7).isfinite()
    assert kept.tolist() == [[True, True, False, False]]
    assert truncate(logits, 0.1).isfinite().tolist() == [[True, False, False, False]]  # the top one stays
    assert torch.equal(truncate(logits, 1.0), logits)


def test_the_transformer_ignores_padding_and_reads_like_torchs_encoder():
    torch.manual_seed(0)
    ours = Transformer(32, 4, 2).eval()
    h, keep = torch.randn(3, 10, 32), torch.ones(3, 10, dtype=torch.bool)
    keep[0, 6:], keep[2, 2:5] = False, False
    with torch.inference_mode():
        out = ours(h, keep)
        changed = h.clone()
        changed[~keep] = 100.0   # what padding holds must not reach any kept token
        assert torch.allclose(ours(changed, keep)[keep], out[keep], atol=1e-5)
        layer = torch.nn.TransformerEncoderLayer(32, 4, 128, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=True)
        theirs = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
        theirs.load_state_dict(ours.state_dict())   # checkpoints trained with torch's encoder load as they are
        assert torch.allclose(theirs(h, src_key_padding_mask=~keep)[keep], out[keep], atol=1e-5)
    with pytest.raises(ValueError, match="heads"):
        Transformer(32, 5, 1)


def test_image_codes_are_the_vqvaes_fsq_digits_and_their_log_probs_add_up():
    from sd3core.models.vqvae import FSQ
    levels = image_diffusion.Config().levels
    codes = torch.arange(image_diffusion.Config().codebook)
    fsq = FSQ(levels)
    digits = torch.stack(vqvae.index_digits(codes, levels)).float()   # (channels, codes)
    latents = (digits.view(1, len(levels), -1, 1) - fsq.half_width) / fsq.half_width
    assert torch.equal(fsq.to_index(latents)[0, :, 0], codes)
    logits = torch.randn(3, sum(levels))
    joint = image_diffusion.code_log_probs(logits, levels)
    assert joint.shape == (3, len(codes)) and torch.allclose(joint.exp().sum(-1), torch.ones(3))
    per_channel = [p.log_softmax(-1) for p in logits.split(list(levels), -1)]
    expected = sum(p[:, d] for p, d in zip(per_channel, vqvae.index_digits(codes, levels)))
    assert torch.allclose(joint, expected, atol=1e-5)


def test_captions_round_trip_through_word_ids():
    words = text_diffusion.caption_words()
    text = "A small red cube sits to the left of the sphere. It is behind a cone."
    ids = text_diffusion.encode_caption(text, words, 40)
    assert ids.shape == (40,) and text_diffusion.decode_caption(ids, words) == text
    unknown = text_diffusion.encode_caption("a zebra", words, 4)
    assert words[unknown[1]] == "<unk>" and text_diffusion.decode_caption(unknown, words) == "A"


def test_decoding_fills_each_slot_with_its_objects_words():
    words = text_diffusion.caption_words()
    ids = text_diffusion.encode_caption(["a", "<o1>", "is", "on", "a", "<o0>", ".", "a", "<o2>"], words, 12)
    assert text_diffusion.decode_caption(ids, words, ["orange cube", "red sphere"]) == \
        "A red sphere is on an orange cube."  # "a"/"an" fitted; a slot with no object dropped,
    # and with it the unfinished sentence after a finished one


def test_examples_name_objects_by_slots_only_with_the_3dsg(tiny_world):
    data = text_diffusion.load_data(str(tiny_world), "train", 0)
    first = text_diffusion.Config().first_slot
    with_slots = [i for i in range(len(data)) if (data.words[i] >= first).any()]
    assert len(with_slots) >= 0.9 * len(data)
    for i in with_slots:
        example = data[i]
        named = example["words"][example["words"] >= first] - first
        assert example["cond"]["graph_valid"][1:][named].all()  # each slot names an object of the 3DSG
        assert (example["plain"] < first).all()                  # the caption's own words: no slots


def test_slots_point_at_objects_by_what_they_are_not_their_index(tiny_checkpoints):
    from sd3core.models.dgae import graph_features
    engine = Engine(tiny_checkpoints, device="cpu")
    model = engine.model("text_diffusion")
    graph = _graph3d()
    swapped = SceneGraph("3dsg", [SGObject(0, *_objects(graph)[1]), SGObject(1, *_objects(graph)[0])],
                         [SGRelation(1, "to the left of", 0), SGRelation(0, "to the right of", 1)])
    first = model.config.first_slot
    logits = [_caption_logits(model, graph_features(engine.model("dgae"), [g]))[True][0, :, first:first + 2]
              for g in (graph, swapped)]
    assert torch.allclose(logits[0], logits[1].flip(-1), atol=1e-4)
    assert not torch.allclose(logits[0][:, 0], logits[0][:, 1])


def test_sampling_allows_only_the_slots_of_the_3dsgs_objects(tiny_checkpoints):
    from sd3core.models.dgae import graph_features
    engine = Engine(tiny_checkpoints, device="cpu")
    model = engine.model("text_diffusion")
    cond = graph_features(engine.model("dgae"), [_graph3d()])
    first, k = model.config.first_slot, len(model.config.words)
    for use, slots in ((True, [True, True] + [False] * (k - first - 2)), (False, [False] * (k - first))):
        allowed = model.allowed_words({**cond, "use_graph": torch.tensor([use])})
        assert allowed[0, first:].tolist() == slots and allowed[0, :first].all()


@pytest.mark.parametrize("stage", [image_diffusion, text_diffusion])
def test_training_steps_lower_the_loss(stage, tiny_world):
    data = stage.load_data(str(tiny_world), "train", 0)
    assert len(data) >= 8
    batch = torch.utils.data.default_collate([data[i] for i in range(min(16, len(data)))])
    torch.manual_seed(0)
    config = stage.Config(width=32, layers=1, heads=2)
    losses, logs = fit_steps(stage, stage.build(config), batch, steps=60, lr=3e-3)
    assert losses[-1] < 0.7 * losses[0] and "acc" in logs


def _graph3d():
    return SceneGraph("3dsg", [SGObject(0, "cube", ("red",), position=(-0.8, -0.5, 5.0), size=(0.8, 0.8, 0.8)),
                               SGObject(1, "sphere", ("blue",), position=(0.8, -0.5, 5.0), size=(0.8, 0.8, 0.8))],
                      [SGRelation(0, "to the left of", 1), SGRelation(1, "to the right of", 0)])


def _objects(graph):
    return [(o.label, o.attributes, None, o.position, o.size) for o in graph.objects]


def _caption_logits(model, cond: dict, **changed) -> dict[bool, torch.Tensor]:
    """The text diffusion's logits for a fully masked caption, with and without the 3DSG."""
    words = torch.full((1, model.config.max_words), len(model.config.words))
    image = torch.zeros(1, model.config.grid ** 2, dtype=torch.long)
    return {use: model(words, {**cond, **changed, "use_graph": torch.tensor([use]), "image": image})
            for use in (True, False)}


def test_the_caption_model_reads_each_objects_words_from_the_3dsg(tiny_checkpoints):
    from sd3core.models.dgae import IDENTITY_FIELDS, graph_features
    from sd3core.models.graph_diffusion import ATTRIBUTE_WORDS
    engine = Engine(tiny_checkpoints, device="cpu")
    model = engine.model("text_diffusion")
    torch.nn.init.normal_(model.identity.attribute["colour"].weight)  # tiny training leaves it near 0
    cond = graph_features(engine.model("dgae"), [_graph3d()])
    assert cond["identity"].shape == (1, 2, len(IDENTITY_FIELDS))
    colour = IDENTITY_FIELDS.index("colour")
    assert cond["identity"][0, 0, colour] == ATTRIBUTE_WORDS["colour"].index("red")
    green = cond["identity"].clone()
    green[0, 0, colour] = ATTRIBUTE_WORDS["colour"].index("green")  # the same DGAE features otherwise
    red, other = _caption_logits(model, cond), _caption_logits(model, cond, identity=green)
    assert not torch.allclose(red[True], other[True])
    assert torch.allclose(red[False], other[False])  # "image only": no 3DSG at all


def test_the_image_model_reads_each_objects_words_from_the_3dsg(tiny_checkpoints):
    from sd3core.models.dgae import IDENTITY_FIELDS, graph_features
    from sd3core.models.graph_diffusion import ATTRIBUTE_WORDS
    engine = Engine(tiny_checkpoints, device="cpu")
    model = engine.model("image_diffusion")
    torch.nn.init.normal_(model.identity.attribute["colour"].weight)  # tiny training leaves it near 0
    cond = graph_features(engine.model("dgae"), [_graph3d()])
    green = cond["identity"].clone()
    green[0, 0, IDENTITY_FIELDS.index("colour")] = ATTRIBUTE_WORDS["colour"].index("green")
    masked = torch.full((1, model.config.grid ** 2), model.config.codebook)
    text = torch.zeros(1, model.config.text_width)

    def logits(identity, use_graph):
        return model(masked, {**cond, "identity": identity, "text": text, "use_text": torch.tensor([False]),
                              "use_graph": torch.tensor([use_graph])})
    assert not torch.allclose(logits(cond["identity"], True), logits(green, True))
    assert torch.allclose(logits(cond["identity"], False), logits(green, False))  # "without 3DSG"


def test_the_caption_model_reads_each_pairs_relations_from_the_3dsg(tiny_checkpoints):
    from sd3core.graph_tokens import default_coding
    from sd3core.models.dgae import graph_features
    engine = Engine(tiny_checkpoints, device="cpu")
    model = engine.model("text_diffusion")
    torch.nn.init.normal_(model.pairs.relation.weight)  # tiny training leaves it near 0
    cond = graph_features(engine.model("dgae"), [_graph3d()])
    coding = default_coding()
    assert cond["relations"].tolist() == [[[coding.set_index(()), coding.set_index({"to the left of"})],
                                           [coding.set_index({"to the right of"}), coding.set_index(())]]]
    swapped = cond["relations"].transpose(1, 2)  # cube right of sphere, the same DGAE features otherwise
    left, right = _caption_logits(model, cond), _caption_logits(model, cond, relations=swapped)
    assert not torch.allclose(left[True], right[True])
    assert torch.allclose(left[False], right[False])
    alone = graph_features(engine.model("dgae"), [SceneGraph("3dsg", _graph3d().objects[:1], [])])
    assert alone["relations"].shape == (1, 1, 1)
    assert _caption_logits(model, alone)[True].isfinite().all()  # one object: no pair tokens


def test_engine_generates_images_and_captions(tiny_checkpoints, tiny_world):
    engine = Engine(tiny_checkpoints, device="cpu")
    graph = _graph3d()
    images = engine.generate_image(graph, "a red cube to the left of a blue sphere", n=2, steps=2, seed=3)
    assert len(images) == 2 and images[0].shape == (64, 64, 3) and images[0].dtype == np.uint8
    again = engine.generate_image(graph, "a red cube to the left of a blue sphere", n=2, steps=2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(images, again))  # same seed, same images
    assert len(engine.generate_image(graph, None, steps=2)) == 1      # no caption: the 3DSG alone
    result = engine.text_to_image("A red cube is left of a blue ball.", n=1, steps=2)
    assert result["tsg"].kind == "tsg" and result["graph3d"].kind == "3dsg" and len(result["images"]) == 1
    render = next(read_split(tiny_world, "test"))["rgb"]
    si2t = engine.image_to_text(render, n=2, steps=2)
    assert si2t["vsg"].kind == "vsg" and all(isinstance(c, str) and "<" not in c for c in si2t["captions"])
    assert len(engine.generate_caption(graph, None, steps=2)) == 1   # no image: one is drawn first


def test_the_st2i_evaluation_without_ablations_gives_the_same_full_row(tiny_checkpoints, tiny_world):
    engine = Engine(tiny_checkpoints, device="cpu")
    model = engine.model("image_diffusion")
    every = image_diffusion.evaluate(model, str(tiny_world), "test", 2, steps=2, engine=engine)
    full = image_diffusion.evaluate(model, str(tiny_world), "test", 2, steps=2, engine=engine, ablations=False)
    assert full == {k: v for k, v in every.items() if k.startswith(("real_", "full_"))}
    assert {k.split("_")[0] for k in every} == {"real", "tokenized", "full", "one", "text"}


def test_regenerating_reuses_condition_encodings_with_the_same_result(tiny_checkpoints, tiny_world, monkeypatch):
    engine = Engine(tiny_checkpoints, device="cpu")
    graph, text = _graph3d(), "a red cube to the left of a blue sphere"
    render = next(read_split(tiny_world, "test"))["rgb"]
    first = engine.generate_image_tokens([graph] * 2, [text] * 2, steps=2, seed=1)
    captions = engine.generate_captions([graph], [render], steps=2, seed=1)
    calls = []
    monkeypatch.setattr(engine, "tokenize", lambda images: calls.append("tokenize"))
    monkeypatch.setattr("sd3core.models.dgae.graph_features", lambda *a: calls.append("graph_features"))
    monkeypatch.setattr("sd3core.models.clip.encode_texts", lambda *a: calls.append("encode_texts"))
    assert torch.equal(engine.generate_image_tokens([graph] * 2, [text] * 2, steps=2, seed=1), first)
    assert engine.generate_captions([graph], [render], steps=2, seed=1) == captions
    assert calls == []  # nothing re-encoded, the same draws
    monkeypatch.undo()
    fresh = Engine(tiny_checkpoints, device="cpu")  # the cached encodings equal fresh ones
    assert torch.equal(fresh.generate_image_tokens([graph] * 2, [text] * 2, steps=2, seed=1), first)

    for k in range(CONDITION_CACHE_SIZE):  # the cache is bounded: the oldest caption falls out
        engine.generate_image_tokens([graph] * 2, [f"{text} {k}"] * 2, steps=1)
    encode_texts = sd3core.models.clip.encode_texts
    monkeypatch.setattr("sd3core.models.clip.encode_texts", lambda *a: calls.append("encode_texts") or encode_texts(*a))
    engine.generate_image_tokens([graph] * 2, [text] * 2, steps=1)
    assert calls == ["encode_texts"]
    engine.set_model("dgae", engine.model("dgae"))  # a new model: nothing cached is used
    engine.generate_image_tokens([graph] * 2, [text] * 2, steps=1)
    assert calls == ["encode_texts"] * 2


def test_sd3_threads_sets_torch_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SD3_THREADS", "1")
        assert set_threads() == 1 == torch.get_num_threads()
        monkeypatch.setenv("SD3_THREADS", "two")
        with pytest.raises(ValueError, match="SD3_THREADS: got 'two'"):
            set_threads()
    finally:
        torch.set_num_threads(before)


def test_engine_refuses_bad_generation_requests(tiny_checkpoints):
    engine = Engine(tiny_checkpoints, device="cpu")
    flat = SceneGraph("tsg", [SGObject(0, "cube")])
    with pytest.raises(ValueError, match=r"objects\[0\] \(cube\): no position"):
        engine.generate_image(flat)
    with pytest.raises(ValueError, match="n: got 17"):
        engine.generate_image(_graph3d(), n=17)
    with pytest.raises(ValueError, match="guidance: got -1"):
        engine.generate_image(_graph3d(), guidance=-1)
    with pytest.raises(ValueError, match="not a shape"):
        engine.generate_image(SceneGraph("3dsg", [SGObject(0, "unicorn", position=(0, 0, 5), size=(1, 1, 1))]))
    with pytest.raises(ValueError, match="no object"):
        engine.text_to_image("   ")
    with pytest.raises(ValueError, match="got 2 images for 1 graphs"):
        engine.generate_captions([_graph3d()], [np.zeros((8, 8, 3), np.uint8)] * 2)
    with pytest.raises(ValueError, match=r"candidates: got \(8, 0\)"):
        engine.generate_captions([_graph3d()], [np.zeros((8, 8, 3), np.uint8)], candidates=(8, 0))
    for bad in (0, 17, "4"):
        with pytest.raises(ValueError, match=f"candidates: got {bad!r}, expected 1 to 16"):
            engine.generate_images([_graph3d()], [None], candidates=bad)
    with pytest.raises(ValueError, match="reader: got 'clip'"):
        engine.detect([np.zeros((8, 8, 3), np.uint8)], reader="clip")


def test_image_candidates_keep_the_draw_the_verifier_reads_as_most_faithful(tiny_checkpoints):
    engine = Engine(tiny_checkpoints, device="cpu", precision=torch.float32)
    graph, text = _graph3d(), "a red cube to the left of a blue sphere"
    kept = engine.generate_image_tokens([graph, graph], [text, None], steps=2, seed=4, candidates=3, repairs=0)
    drawn = engine.generate_image_tokens([graph] * 3 + [graph] * 3, [text] * 3 + [None] * 3, steps=2, seed=4,
                                         candidates=1)   # the same six draws, unread
    scores = [image_agreement(graph, d) for d in engine.detect(engine.detokenize(drawn), reader="verifier")]
    for pair in range(2):
        own = scores[3 * pair:3 * pair + 3]
        assert torch.equal(kept[pair], drawn[3 * pair + own.index(max(own))])  # the first of the best
    # without the 3DSG there is nothing to verify against: one draw, whatever ``candidates`` says
    alone = [engine.generate_image_tokens([graph], [text], steps=2, seed=4, use_graph=False, candidates=k)
             for k in (1, 3)]
    assert torch.equal(*alone)


def _reader_of(graph: SceneGraph, engine: Engine, cells: torch.Tensor):
    """A stand-in verifier for ``engine.detect``: it finds object i of ``graph`` (with its words, at
    its place left or right) in an image whose tokens in the cells the object shows in (``cells``:
    (grid**2, objects) bool) sum to an even number, so that what it finds changes from image to
    image where the object is drawn, and puts the first object on the wrong side when its cells'
    sum is divisible by 3; the yardstick (``reader="detector"``) reads as usual."""
    from sd3core.models.detector import make_detections
    real = engine.detect

    def detect(images, reader="detector"):
        if reader != "verifier":
            return real(images, reader)
        out = []
        for tokens in engine.tokenize(images):
            sums = [int(tokens.flatten()[cells[:, i]].sum()) for i in range(len(graph.objects))]
            found = [o for o, total in zip(graph.objects, sums) if total % 2 == 0]
            swapped = sums[0] % 3 == 0                        # the first object drawn on the wrong side
            left = [(o.position[0] < 0) != (swapped and o.id == graph.objects[0].id) for o in found]
            boxes = [(0.1, 0.4, 0.4, 0.7) if on_left else (0.6, 0.4, 0.9, 0.7) for on_left in left]
            out.append(make_detections([SGObject(0, o.label, o.attributes, b) for o, b in zip(found, boxes)],
                                       [5.0] * len(found), [0.9] * len(found)))
        return out
    return detect


def test_repairs_redraw_only_what_the_verifier_found_missing_or_misplaced(tiny_checkpoints, monkeypatch):
    from sd3core.evaluate import faithfulness
    from sd3core.models.dgae import graph_features
    from sd3core.pipeline import REPAIR_COVER, agreement
    engine = Engine(tiny_checkpoints, device="cpu", precision=torch.float32)
    graph, text = _graph3d(), "a red cube to the left of a blue sphere"
    cond = {**graph_features(engine.model("dgae"), [graph]), "use_graph": torch.tensor([True])}
    cells = engine.model("image_diffusion").object_cells(cond)[0] > REPAIR_COVER     # (grid**2, objects)
    monkeypatch.setattr(engine, "detect", _reader_of(graph, engine, cells))
    runs = {r: engine.generate_image_tokens([graph] * 6, [text, None] * 3, steps=2, seed=5, candidates=3,
                                            repairs=r) for r in (0, 1)}
    checks = {r: [faithfulness(graph, d) for d in engine.detect(engine.detokenize(t), reader="verifier")]
              for r, t in runs.items()}
    assert any(not all(found) for found, _ in checks[0])                    # objects to redraw
    assert any(all(found) and not all(holds) for found, holds in checks[0])  # and a misplaced one
    changed_pairs = 0
    for pair, (found, holds) in enumerate(checks[0]):
        ends = [(r.subject, r.object) for r in graph.spatial_relations()]
        redo = [i for i, f in enumerate(found) if not f]
        redo += [s for (s, o), held in zip(ends, holds) if not held and found[s] and found[o]]
        redrawable = cells[:, redo].any(-1)
        changed = (runs[1][pair] != runs[0][pair]).flatten()
        assert not (changed & ~redrawable).any()                            # nothing else is touched
        assert agreement(checks[1][pair]) >= agreement(checks[0][pair])
        if changed.any():
            assert agreement(checks[1][pair]) > agreement(checks[0][pair])  # replaced only by a better one
            changed_pairs += 1
    assert changed_pairs > 0
    with pytest.raises(ValueError, match="repairs: got -1, expected 0 to 4"):
        engine.generate_images([graph], [None], repairs=-1)


def _scored(captions: list[str], log_probs: list[float] | None = None) -> tuple[list[str], torch.Tensor]:
    """What ``text_diffusion.sample`` returns: captions and their log-probabilities (equal unless given)."""
    return captions, torch.tensor(log_probs or [-10.0] * len(captions))


def test_the_caption_sampler_scores_each_caption_by_its_drawn_words(tiny_checkpoints):
    from sd3core.models.dgae import graph_features
    engine = Engine(tiny_checkpoints, device="cpu")
    model = engine.model("text_diffusion")
    graphs = [_graph3d()] * 3
    cond = {**graph_features(engine.model("dgae"), graphs), "use_graph": torch.tensor([True] * 3),
            "image": torch.zeros(3, model.config.grid ** 2, dtype=torch.long)}
    captions, log_probs = text_diffusion.sample(model, cond, graphs, 4, torch.Generator().manual_seed(0))
    assert len(captions) == 3 and log_probs.shape == (3,)
    assert log_probs.isfinite().all() and (log_probs <= 0).all()
    assert not torch.equal(log_probs, torch.zeros(3))


def test_copies_of_a_condition_draw_as_the_condition_repeated(tiny_checkpoints):
    from sd3core.models.dgae import graph_features
    engine = Engine(tiny_checkpoints, device="cpu")
    model = engine.model("text_diffusion")
    graphs = [_graph3d(), _graph3d()]
    cond = {**graph_features(engine.model("dgae"), graphs), "use_graph": torch.tensor([True, True]),
            "image": torch.arange(2 * model.config.grid ** 2).view(2, -1) % model.config.codebook}
    repeated = {name: v.repeat_interleave(3, 0) for name, v in cond.items()}
    for temperature in (0.0, 1.0):
        copies = text_diffusion.sample(model, cond, graphs, 4, torch.Generator().manual_seed(1), temperature, copies=3)
        plain = text_diffusion.sample(model, repeated, [g for g in graphs for _ in range(3)], 4,
                                      torch.Generator().manual_seed(1), temperature)
        assert len(copies[0]) == 6 and copies[0] == plain[0]
        assert torch.allclose(copies[1], plain[1], atol=1e-4)


def test_the_caption_grammar_knows_its_training_captions_and_flags_garbled_ones(tiny_world, tiny_checkpoints, tmp_path):
    """Fitted on a split, the grammar reads every caption of it as fluent and counts the trigrams
    of other text it has not seen; ``train`` ships it like any stage."""
    from sd3core.checkpoints import read_manifest
    from sd3core.train import TrainArgs, train
    captions = [c["text"] for ex in read_split(tiny_world, "train") for c in ex["record"]["captions"]]
    grammar = caption_grammar.fit(str(tiny_world), "train")
    assert grammar.unseen(captions) == [0] * len(captions)
    cut = [c[:c.rindex(" ")] + "." for c in captions]     # the last word dropped: "... left of a."
    assert all(u > 0 for u in grammar.unseen(cut))
    # "<s> <s> </s>"; the three trigrams with "zorbly" ("<object> is zorbly", "is zorbly .", "zorbly . </s>")
    assert grammar.unseen(["", "A red cube is zorbly."]) == [1, 3]
    # what ships is what was fitted: the fixture's file, loaded by the Engine, reads the same
    shipped = Engine(tiny_checkpoints, device="cpu").model("caption_grammar")
    assert shipped.unseen(cut + captions) == grammar.unseen(cut + captions)
    metrics = train(TrainArgs(stage="caption_grammar", data=str(tiny_world), eval_split="test", eval_limit=4,
                              out_dir=str(tmp_path)), command="fit command")
    entry = read_manifest(tmp_path)["caption_grammar.pt"]
    assert entry["command"] == "fit command" and entry["data"]["n"] == 8 and entry["metrics"] == metrics
    assert 0 < metrics["gold_fluent"] <= 1 and metrics["trigrams"] == grammar.config.size


def _engine_whose_grammar_knows(checkpoints, *captions: str) -> Engine:
    """An Engine whose caption grammar is fitted on ``captions`` alone: those and their like are fluent."""
    engine = Engine(checkpoints, device="cpu")
    engine.set_model("caption_grammar", caption_grammar.from_captions(list(captions)))
    return engine


def test_on_equal_agreement_a_fluent_caption_then_the_likelier_one_is_kept(tiny_checkpoints, monkeypatch):
    """Between captions that agree with the 3DSG equally, a fluent one wins over a garbled one
    however likely the model found that, and among the fluent, the one drawn with the higher
    log-probability, wherever it comes."""
    garbled = "A red cube is is a blue sphere."
    fluent, other = "A red cube and a blue sphere.", "There is a red cube and a blue sphere."
    engine = _engine_whose_grammar_knows(tiny_checkpoints, fluent, other)
    image = np.zeros((8, 8, 3), np.uint8)
    draws = {"fluent first": ([garbled, fluent, garbled], [-9.0, -4.0, -2.0]),
             "likelier fluent": ([fluent, other, garbled], [-9.0, -4.0, -1.0])}
    for name, expected in (("fluent first", fluent), ("likelier fluent", other)):
        monkeypatch.setattr("sd3core.models.text_diffusion.sample",
                            lambda model, cond, graphs, *a, copies=1, name=name: _scored(*draws[name]))
        assert engine.generate_captions([_graph3d()], [image], candidates=(3,)) == [expected]


def test_the_caption_kept_is_the_one_that_agrees_with_the_3dsg(tiny_checkpoints, monkeypatch):
    """Generate, then verify: of the captions drawn, the one whose relations hold in the 3DSG."""
    from sd3core.pipeline import caption_agreement
    from sd3core.textparse import parse_text
    right = "A red cube is to the left of a blue sphere."
    wrong = "A red cube is to the right of a blue sphere."
    assert caption_agreement(parse_text(right), _graph3d()) == 1
    assert caption_agreement(parse_text(wrong), _graph3d()) == -1
    assert caption_agreement(parse_text("A red cube."), _graph3d()) == 0
    drawn = []
    monkeypatch.setattr("sd3core.models.text_diffusion.sample",
                        lambda model, cond, graphs, *a, copies=1: drawn.append(len(graphs) * copies) or _scored(([wrong, right, wrong] * 2)[:len(graphs) * copies]))
    engine = _engine_whose_grammar_knows(tiny_checkpoints, right, wrong)
    image = np.zeros((8, 8, 3), np.uint8)
    assert engine.generate_captions([_graph3d()] * 2, [image] * 2, candidates=(3, 3)) == [right, right]
    assert engine.generate_captions([_graph3d()], [image], candidates=(1,), seed=1) == [wrong]  # no choice
    assert drawn == [6, 1]


def test_a_pair_whose_best_caption_fails_gets_another_round(tiny_checkpoints, monkeypatch):
    """Only a pair whose best candidate states a relation that fails, or none that holds, or is not
    fluent, is drawn for again; a round each entry of ``candidates``, which may be fewer."""
    from sd3core.pipeline import caption_agreement
    from sd3core.textparse import parse_text
    right = "A red cube is to the left of a blue sphere."
    wrong = "A red cube is to the right of a blue sphere."
    bare = "A red cube and a blue sphere."
    garbled = "A red cube is is to the left of a blue sphere."
    assert caption_agreement(parse_text(garbled), _graph3d()) == 1   # its relation holds: only grammar fails it
    rounds = iter([[right, right, wrong, wrong], [right], [wrong, wrong], [bare, wrong], [right, bare],
                   [garbled, wrong], [right, garbled]])
    drawn = []
    monkeypatch.setattr("sd3core.models.text_diffusion.sample",
                        lambda model, cond, graphs, *a, copies=1: drawn.append(len(graphs) * copies) or _scored(next(rounds)))
    engine = _engine_whose_grammar_knows(tiny_checkpoints, right, wrong, bare)
    image = np.zeros((8, 8, 3), np.uint8)
    assert engine.generate_captions([_graph3d()] * 2, [image] * 2, candidates=(2, 1, 1)) == [right, right]
    assert drawn == [4, 1]
    drawn.clear()
    assert engine.generate_captions([_graph3d()], [image], candidates=(2,)) == [wrong]
    assert drawn == [2]
    assert engine.generate_captions([_graph3d()], [image], candidates=(2, 2)) == [right]  # none stated: again
    assert drawn == [2, 2, 2]
    assert engine.generate_captions([_graph3d()], [image], candidates=(2, 2)) == [right]  # not fluent: again
    assert drawn == [2, 2, 2, 2, 2]
    with pytest.raises(ValueError, match="candidates: got \\(\\)"):
        engine.generate_captions([_graph3d()], [image], candidates=())
    with pytest.raises(ValueError, match="candidates: got 8"):
        engine.generate_captions([_graph3d()], [image], candidates=8)


def test_faithfulness_reads_relations_from_detections():
    graph = SceneGraph("tsg", [SGObject(0, "cube", ("red",)), SGObject(1, "sphere"), SGObject(2, "cone")],
                       [SGRelation(0, "to the left of", 1), SGRelation(0, "behind", 1), SGRelation(1, "on", 2),
                        SGRelation(0, "holding", 1)])
    found = make_detections([SGObject(0, "sphere", ("blue",), (0.6, 0.4, 0.8, 0.6)),
                             SGObject(1, "cube", ("red", "large"), (0.1, 0.4, 0.3, 0.6))],
                            depth=[5.0, 6.0], scores=[0.9, 0.8])
    objects, relations = faithfulness(graph, found)
    assert objects == [True, True, False]             # no cone was detected
    assert relations == [True, True, False]           # left ✓, behind ✓ (1 m deeper), on ✗ (no cone)
    wrong_colour = SceneGraph("tsg", [SGObject(0, "cube", ("blue",))])
    assert faithfulness(wrong_colour, found)[0] == [False]


def test_faithfulness_reads_an_object_resting_on_another_as_above_it():
    stacked = make_detections([SGObject(0, "cube", ("red",), (0.40, 0.30, 0.60, 0.52)),    # its bottom edge
                               SGObject(1, "cube", ("blue",), (0.38, 0.45, 0.62, 0.70))],  # over this top
                              depth=[5.0, 5.0], scores=[0.9, 0.9])
    said = SceneGraph("tsg", [SGObject(0, "cube", ("red",)), SGObject(1, "cube", ("blue",))],
                      [SGRelation(0, "on", 1), SGRelation(0, "above", 1), SGRelation(1, "under", 0),
                       SGRelation(1, "above", 0), SGRelation(0, "under", 1), SGRelation(0, "to the left of", 1)])
    assert faithfulness(said, stacked)[1] == [True, True, True, False, False, False]


def test_retrieval_bound_counts_the_scenes_a_caption_is_true_of():
    left, mirrored = _graph3d(), SceneGraph("3dsg", [
        SGObject(0, "cube", ("red",), position=(0.8, -0.5, 5.0), size=(0.8, 0.8, 0.8)),
        SGObject(1, "sphere", ("blue",), position=(-0.8, -0.5, 5.0), size=(0.8, 0.8, 0.8))],
        [SGRelation(0, "to the right of", 1), SGRelation(1, "to the left of", 0)])
    cube_left = SceneGraph("tsg", [SGObject(0, "block", ("red",)), SGObject(1, "ball")],
                           [SGRelation(0, "to the left of", 1)])
    cube_right = SceneGraph("tsg", [SGObject(0, "cube"), SGObject(1, "sphere", ("blue",))],
                            [SGRelation(1, "to the left of", 0)])
    a_cube = SceneGraph("tsg", [SGObject(0, "cube", ("red",))])
    assert true_of(cube_left, left) and not true_of(cube_left, mirrored)      # synonyms read, relation checked
    assert true_of(cube_right, mirrored) and not true_of(cube_right, left)
    assert true_of(a_cube, left) and true_of(a_cube, mirrored)
    assert not true_of(SceneGraph("tsg", [SGObject(0, "cube", ("green",))]), left)
    two_cubes = SceneGraph("tsg", [SGObject(0, "cube"), SGObject(1, "cube")])     # needs two distinct cubes
    assert not true_of(two_cubes, left)
    # each relational caption picks its own scene; "a red cube" fits both, so half a chance at k = 1
    assert retrieval_bound([cube_left, cube_right], [left, mirrored]) == {
        "i2t_recall_at_1": 1.0, "i2t_recall_at_5": 1.0, "scenes_true_of_median": 1.0}
    assert retrieval_bound([a_cube, cube_right], [left, mirrored], ks=(1,)) == {
        "i2t_recall_at_1": 0.75, "scenes_true_of_median": 1.5}


def test_caption_metrics():
    gold = _graph3d()
    said = SceneGraph("tsg", [SGObject(0, "ball"), SGObject(1, "cube", ("red",))],
                      [SGRelation(0, "to the right of", 1), SGRelation(1, "to the right of", 0)])
    assert relation_correctness(said, gold) == [True, False]
    ambiguous = SceneGraph("tsg", [SGObject(0, "cube"), SGObject(1, "sphere", ("green",))],
                           [SGRelation(0, "to the left of", 1)])
    assert relation_correctness(ambiguous, gold) == [False]   # no green sphere in the scene
    assert scene_graph_f1([said], [[said]]) == 1.0 and scene_graph_f1([said], [[ambiguous]]) == 0.0
    refs = [["a red cube is left of a ball ."], ["the green cone is on a box ."], ["there is a small bucket ."]]
    same = caption_scores([r[0] for r in refs], refs)
    other = caption_scores(["the blue cone is behind it", "a ball", "it is red"], refs)
    assert same["bleu4"] > 0.99 and other["bleu4"] < 0.1 and other["cider"] < 0.5 < same["cider"]
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(500, 4)), rng.normal(size=(500, 4))
    assert frechet_distance(a, b) < 0.1 < frechet_distance(a, b + 1.0)


def test_generation_sheet_lays_out_captions_with_images_and_images_with_captions(tiny_checkpoints, tiny_world):
    from sd3core.evaluate import generation_sheet
    engine = Engine(tiny_checkpoints, device="cpu")
    render = next(read_split(tiny_world, "test"))["rgb"]
    sheet = generation_sheet(engine, ["a red cube to the left of a blue sphere"], [render], n=2)
    assert sheet.size == (3 * (192 + 4) + 4, 2 * (192 + 4) + 4)  # 2 rows of a picture/text and 2 outputs
    assert np.asarray(sheet)[4 + 192 // 2, 4 + 192 + 4 + 10].tolist() != [255, 255, 255]  # an image, not text


def test_projected_boxes_fall_where_the_world_camera_saw_the_objects(tiny_checkpoints, tiny_world):
    """The layout map's camera, with its pitch read off the 3DSG, against the boxes of the renders."""
    from sd3core.models.conditioning import project_boxes
    from sd3core.models.dgae import graph_features
    engine = Engine(tiny_checkpoints, device="cpu")
    records = [example["record"] for example in read_split(tiny_world, "train")]
    graphs = [SceneGraph.from_dict(r["graph3d"]) for r in records if r["graph3d"]["objects"]]
    cond = graph_features(engine.model("dgae"), graphs)
    boxes, _ = project_boxes(cond["geometry"], cond["graph_valid"][:, 1:], 40.0, 0.4, 6.75)
    errors = torch.cat([((box[:2] + box[2:]) / 2 - (torch.tensor(o.box[:2]) + torch.tensor(o.box[2:])) / 2).abs()
                        for graph, projected in zip(graphs, boxes) for o, box in zip(graph.objects, projected)])
    assert errors.mean() < 0.05 and errors.max() < 0.16, errors   # of the image's width / height


def test_the_layout_map_puts_each_object_in_its_cells_and_hides_what_is_behind():
    from sd3core.models.conditioning import cell_layout
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.375], [0.25, 0.25, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]])
    depth = torch.tensor([[5.0, 6.0, 4.0]])
    valid = torch.tensor([[True, True, False]])       # the third is padding
    weights = cell_layout(boxes, depth, valid, 4).view(4, 4, 3)
    assert weights[0, 0].tolist() == [1.0, 0.0, 0.0]  # top left: only the first
    assert weights[3, 3].tolist() == [0.0, 1.0, 0.0]  # bottom right: only the second
    assert weights[0, 1].tolist() == [1.0, 0.0, 0.0]  # the first alone
    assert weights[1, 1].tolist() == pytest.approx([0.5, 0.5, 0.0])  # the first covers half, hiding half the second
    assert weights[..., 2].sum() == 0


def test_the_image_model_reads_where_the_3dsg_puts_each_object(tiny_checkpoints):
    """With the objects' own geometry features silenced, moving an object still changes the
    prediction, through the layout map alone."""
    from sd3core.models.dgae import graph_features
    engine = Engine(tiny_checkpoints, device="cpu")
    model = engine.model("image_diffusion")
    torch.nn.init.zeros_(model.from_geometry.weight), torch.nn.init.zeros_(model.from_geometry.bias)
    cond = graph_features(engine.model("dgae"), [_graph3d()])
    moved = cond["geometry"].clone()
    moved[0, 0, 0] += 0.2                              # the first object 1 m to the right
    masked = torch.full((1, model.config.grid ** 2), model.config.codebook)
    text = torch.zeros(1, model.config.text_width)

    def logits(geometry):
        return model(masked, {**cond, "geometry": geometry, "text": text, "use_text": torch.tensor([False]),
                              "use_graph": torch.tensor([True])})
    torch.nn.init.normal_(model.from_layout.weight)   # tiny training leaves it near 0
    assert not torch.allclose(logits(cond["geometry"]), logits(moved))
    torch.nn.init.zeros_(model.from_layout.weight)
    assert torch.allclose(logits(cond["geometry"]), logits(moved))
