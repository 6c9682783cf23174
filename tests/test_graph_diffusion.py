"""Lifting a TSG or VSG to a 3DSG: the shared discrete-diffusion math, the 3DSG tokens, the graph
diffusion's conditions and constraints, and the Engine arrow with its bad-input paths."""
import json

import pytest
import torch

from sd3core import diffusion
from sd3core.graph import SceneGraph
from sd3core.graph_tokens import default_coding, graph_to_tokens, sets_agreeing_with_positions, tokens_to_3dsg
from sd3core.models import graph_diffusion
from sd3core.pipeline import Engine
from sd3core.spatial import relations_3d
from sd3core.world.build import read_split

from conftest import fit_steps


def _tsg(objects, relations=()):
    return SceneGraph.from_dict({"kind": "tsg",
                                 "objects": [{"id": i, "label": label, "attributes": attrs}
                                             for i, (label, attrs) in enumerate(objects)],
                                 "relations": [{"subject": s, "predicate": p, "object": o} for s, p, o in relations]})


def test_mask_noise_masks_with_probability_t_and_spares_the_unmaskable():
    x0 = torch.randint(0, 5, (2, 1000))
    g = torch.Generator().manual_seed(0)
    xt = diffusion.mask_noise(x0, 5, torch.tensor([0.0, 0.3]), g)
    assert (xt[0] == x0[0]).all()
    assert abs((xt[1] == 5).float().mean().item() - 0.3) < 0.05
    spare = torch.zeros_like(x0, dtype=torch.bool)
    assert (diffusion.mask_noise(x0, 5, torch.ones(2), g, maskable=spare) == x0).all()


def test_unmask_step_reveals_at_the_posterior_rate_and_respects_allowed_classes():
    g = torch.Generator().manual_seed(0)
    xt = torch.full((4000,), 3)
    logits = torch.zeros(4000, 3)
    allowed = torch.tensor([False, True, True]).expand(4000, 3)
    xs = diffusion.unmask_step(xt, logits, 1.0, 0.75, g, allowed)
    revealed = xs != 3
    assert abs(revealed.float().mean().item() - 0.25) < 0.03 and (xs[revealed] != 0).all()
    assert (diffusion.unmask_step(xs, logits, 0.75, 0.0, g, allowed) != 3).all()
    greedy = diffusion.unmask_step(xt[:2], torch.tensor([[0.0, 5.0, 1.0]] * 2), 1.0, 0.0, g, temperature=0)
    assert greedy.tolist() == [1, 1]
    with pytest.raises(ValueError, match="steps"):
        diffusion.sampling_times(0)


def test_gold_3dsg_survives_the_round_trip_through_tokens(tiny_world):
    coding = default_coding()
    for example in read_split(tiny_world, "train"):
        gold = SceneGraph.from_dict(example["record"]["graph3d"])
        ids = [o.id for o in gold.objects]
        out = tokens_to_3dsg(gold, graph_to_tokens(gold, ids, coding), coding)
        assert {(r.subject, r.predicate, r.object) for r in out.relations} == \
               {(r.subject, r.predicate, r.object) for r in gold.relations}
        for a, b in zip(out.objects, gold.objects):
            assert max(abs(p - q) for p, q in zip(a.position, b.position)) < 0.2
            assert max(abs(p - q) for p, q in zip(a.size, b.size)) < 0.05


def test_a_stated_relation_restricts_the_pair_and_its_reverse():
    coding = default_coding()
    cond = graph_diffusion.condition(_tsg([("ball", ["red"]), ("block", [])], [(0, "to the left of", 1)]),
                                     coding, 16)
    assert cond["label"].tolist() == [1, 0]  # synonyms read as the world's shapes
    forward = [coding.relation_sets[k] for k in cond["allowed"][0, 1].nonzero().flatten()]
    backward = [coding.relation_sets[k] for k in cond["allowed"][1, 0].nonzero().flatten()]
    assert forward and all("to the left of" in s for s in forward)
    assert backward and all("to the right of" in s for s in backward)


@pytest.mark.parametrize("graph, words", [
    (_tsg([("dog", []), ("cube", [])]), r"objects\[0\].label: 'dog' is not a shape"),
    (_tsg([("cube", []), ("ball", [])], [(0, "to the left of", 1), (1, "to the left of", 0)]),
     r"relations\[0\] .*relations\[1\] .*contradict"),
    (_tsg([("cube", []), ("ball", [])], [(0, "on", 1), (0, "under", 1)]), "contradict"),
    (_tsg([("cube", [])] * 17), "at most 16"),
])
def test_bad_graphs_are_refused_with_the_field_named(graph, words):
    with pytest.raises(ValueError, match=words):
        graph_diffusion.condition(graph, default_coding(), 16)


def test_training_steps_lower_the_loss(tiny_world):
    data = graph_diffusion.load_data(str(tiny_world), "train", 0)
    assert {d["cond"]["kind"].item() for d in data} == {0, 1}  # captions' TSGs and detected VSGs
    batch = torch.utils.data.default_collate(data[:16])
    torch.manual_seed(0)
    model = graph_diffusion.build(graph_diffusion.Config(width=32, pair_width=16, layers=1, heads=2))
    losses, logs = fit_steps(graph_diffusion, model, batch, steps=30, lr=3e-3)
    assert losses[-1] < 0.7 * losses[0] and "acc_relations" in logs


def test_the_training_data_follows_the_runs_config(tiny_world):
    data = graph_diffusion.load_data(str(tiny_world), "train", 0)
    assert "dual" not in data[0]                     # no dual term: its targets are not computed
    small = graph_diffusion.load_data(str(tiny_world), "train", 0, graph_diffusion.Config(train_objects=3))
    assert 0 < len(small) < len(data) and small[0]["cond"]["valid"].shape == (3,)


def test_engine_lifts_with_stated_relations_kept(tiny_checkpoints):
    engine = Engine(tiny_checkpoints, device="cpu")
    tsg = _tsg([("cube", ["red"]), ("sphere", ["blue"]), ("cone", [])],
               [(0, "to the left of", 1), (2, "on", 0), (0, "holding", 1)])
    graphs = engine.lift_to_3d_samples(tsg, 3, steps=4, seed=1)
    for g in graphs:
        assert g.kind == "3dsg" and [o.id for o in g.objects] == [0, 1, 2]
        assert all(o.position is not None and o.size is not None for o in g.objects)
        triples = {(r.subject, r.predicate, r.object) for r in g.relations}
        assert {(0, "to the left of", 1), (1, "to the right of", 0), (2, "on", 0)} <= triples
        # heights follow the supports: the cone stands on the cube's top (each centre height is
        # rounded to the millimetre, so the two ends differ by at most 1 mm)
        cone, cube = g.objects[2], g.objects[0]
        assert abs((cone.position[1] - cone.size[1] / 2) - (cube.position[1] + cube.size[1] / 2)) < 1e-3 + 1e-9
    again = engine.lift_to_3d_samples(tsg, 3, steps=4, seed=1)
    assert [g.to_dict() for g in again] == [g.to_dict() for g in graphs]  # same seed, same graphs
    assert json.loads(engine.lift_to_3d(tsg, steps=4).to_json())["kind"] == "3dsg"


def test_a_step_that_reveals_nothing_reuses_the_last_prediction(tiny_checkpoints, monkeypatch):
    engine = Engine(tiny_checkpoints, device="cpu")
    calls = []
    engine.model("graph_diffusion").register_forward_hook(lambda *_: calls.append(1))
    tsg = _tsg([("cube", ["red"])])  # one object: few tokens over 16 steps, no pair to reveal
    reused = [g.to_dict() for g in engine.lift_to_3d_samples(tsg, 2, steps=16, seed=3)]
    fewer = len(calls)
    calls.clear()
    monkeypatch.setattr(torch, "equal", lambda a, b: False)  # never the same input: predict every step
    assert [g.to_dict() for g in engine.lift_to_3d_samples(tsg, 2, steps=16, seed=3)] == reused
    assert len(calls) == 16 and fewer < 16


def test_sets_agreeing_with_positions_follow_the_geometry():
    coding = default_coding()
    bins = lambda field, values: torch.tensor([coding.to_bin(field, v) for v in values])  # noqa: E731
    tokens = {"x": bins("x", [-1.5, 1.5, 1.5]), "z": bins("z", [5.0, 5.0, 5.02]),
              "width": bins("width", [1.0, 1.0, 0.5]), "height": bins("height", [1.0, 1.0, 0.5]),
              "depth": bins("depth", [1.0, 1.0, 0.5])}
    agree = sets_agreeing_with_positions(["cube", "cube", "sphere"], tokens, coding)
    sets = coding.relation_sets
    assert [sets[k] for k in agree[0, 1].nonzero().flatten()] == [("to the left of",)]
    assert [sets[k] for k in agree[1, 0].nonzero().flatten()] == [("to the right of",)]
    # the sphere's centre is over the second cube: it may rest on / above it, or the cube be under it
    assert agree[2, 1, sets.index(("above", "on"))] and agree[1, 2, sets.index(("under",))]
    assert not agree[0, 1, sets.index(("above", "on"))] and not agree[2, 0, sets.index(("under",))]


def test_lifted_relations_of_unstacked_objects_agree_with_their_positions(tiny_checkpoints):
    engine = Engine(tiny_checkpoints, device="cpu")
    coding = default_coding()
    tsg = _tsg([("cube", []), ("sphere", []), ("cone", []), ("cylinder", [])])
    checked = 0
    for g in engine.lift_to_3d_samples(tsg, 4, steps=4, seed=3, temperature=1.0):
        said, recomputed = {}, {}
        for r in g.relations:
            said.setdefault((r.subject, r.object), set()).add(r.predicate)
        for s, p, o in relations_3d(g.objects):
            recomputed.setdefault((s, o), set()).add(p)
        stacked = {i for (s, o), ps in said.items() if ps & {"on", "in", "above", "under"} for i in (s, o)}
        for a in g.objects:
            for b in g.objects:
                pair = (a.id, b.id)
                if a.id == b.id or {a.id, b.id} & stacked or \
                        tuple(sorted(recomputed.get(pair, ()))) not in coding.relation_sets:
                    continue
                assert said.get(pair, set()) == recomputed.get(pair, set()), pair
                checked += 1
    assert checked > 0


def test_engine_lift_edge_cases(tiny_checkpoints):
    engine = Engine(tiny_checkpoints, device="cpu")
    assert engine.lift_to_3d(SceneGraph("tsg")) == SceneGraph("3dsg")
    one = engine.lift_to_3d(_tsg([("bucket", ["green"])]), steps=2)
    assert len(one.objects) == 1 and one.relations == ()
    with pytest.raises(ValueError, match="n: got 0"):
        engine.lift_to_3d_samples(one, 0)
    with pytest.raises(ValueError, match="expected a SceneGraph"):
        engine.lift_to_3d({"kind": "tsg"})
    with pytest.raises(ValueError, match="not a shape"):
        engine.lift_to_3d(_tsg([("unicorn", [])]))


def test_dgae_learns_to_reconstruct_3dsgs_through_its_codes(tiny_world):
    from sd3core.models import dgae
    data = dgae.load_data(str(tiny_world), "train", 0)
    batch = torch.utils.data.default_collate(data)
    torch.manual_seed(0)
    model = dgae.build(dgae.Config(width=32, pair_width=16, layers=1, heads=2))
    losses, logs = fit_steps(dgae, model, batch, steps=40, lr=3e-3)
    assert losses[-1] < 0.5 * losses[0] and logs["acc_relations"] > 0.5
    codes = model.encode(batch["cond"], batch["tokens"])
    assert codes.shape == (len(data), 7, len(model.config.levels)) and codes.abs().max() <= 1
    gold = [SceneGraph.from_dict(e["record"]["graph3d"]) for e in read_split(tiny_world, "test")]
    out = dgae.reconstruct(model.eval(), gold)
    assert [[o.id for o in g.objects] for g in out] == [[o.id for o in g.objects] for g in gold]


def test_the_dual_targets_are_the_image_and_text_diffusions_readings_of_the_3dsg(tiny_world):
    from sd3core.generation_data import graph_features_batched, image_tokens
    from sd3core.lift_data import caption_3dsg, lift_examples
    examples = lift_examples(tiny_world, "train", 0)
    assert [ex.scene for ex in examples] == sorted(ex.scene for ex in examples) and examples[-1].scene == 7
    data = graph_diffusion.load_data(str(tiny_world), "train", 0, graph_diffusion.Config(dual_weight=1.0))
    ex = next(ex for ex in examples if 0 < len(ex.ids) <= 6)                  # the first one load_data keeps
    engine = Engine()
    cond = graph_features_batched(engine, [caption_3dsg(ex.graph, ex.gold, dict(zip((o.id for o in ex.graph.objects), ex.ids)))])
    cond = {k: v.float() if v.is_floating_point() else v for k, v in cond.items()}
    render = image_tokens(tiny_world, "train", 8)[ex.scene].flatten()[None].long()
    with torch.inference_mode():
        image = engine.model("image_diffusion").object_features(cond)[0]
        text = engine.model("text_diffusion").object_features({**cond, "image": render, "use_graph": torch.tensor([True])})[0]
    n = len(ex.ids)
    target = data[0]["dual"].float()
    assert target.shape == (6, graph_diffusion.Config().dual_width) == (6, image.shape[1] + text.shape[1])
    assert torch.allclose(target[:n], torch.cat([image, text], -1)[:n], atol=0.01)
    assert (target[n:] == 0).all()                                                # padding objects


def test_the_dual_term_pulls_object_features_towards_the_image_and_text_diffusions(tiny_world):
    config = graph_diffusion.Config(width=32, pair_width=16, layers=1, heads=2, dual_weight=1.0)
    data = graph_diffusion.load_data(str(tiny_world), "train", 0, config)
    batch = torch.utils.data.default_collate(data[:16])
    torch.manual_seed(0)
    model = graph_diffusion.build(config)
    first = graph_diffusion.loss(model, batch)[1]["dual"]
    losses, logs = fit_steps(graph_diffusion, model, batch, steps=30, lr=3e-3)
    assert logs["dual"] < 0.8 * first
    off = graph_diffusion.build(graph_diffusion.Config(width=32, pair_width=16, layers=1, heads=2))
    assert off.dual is None and "dual" not in graph_diffusion.loss(off, batch)[1]   # the ablation: no term


def test_training_can_start_from_a_shipped_checkpoint(tiny_world, tmp_path):
    from sd3core.train import TrainArgs, train
    args = TrainArgs(stage="graph_diffusion", data=str(tiny_world), steps=1, batch=4, warmup=1, eval_limit=2,
                     run_dir=str(tmp_path / "runs"), out_dir=str(tmp_path), threads=1,
                     init="graph_diffusion.pt", config='{"dual_weight": 0.5}')
    train(args, command="test")
    from sd3core.checkpoints import load_checkpoint
    state = load_checkpoint("graph_diffusion.pt", tmp_path)
    assert state["config"]["dual_weight"] == 0.5 and state["config"]["layers"] == 6   # shipped size kept
    assert "dual.weight" in state["state_dict"]
