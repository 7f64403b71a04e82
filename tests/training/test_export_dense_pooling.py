"""A rebuilt head keeps the backbone's dense embedding declared (``dense_pooling.json``) when it has one."""
import json

from findling.training.export import mean_pooled


def _st_folder(root, *, mode_mean=True, normalize=True):
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (root / "1_Pooling").mkdir(parents=True)
    (root / "modules.json").write_text(json.dumps(modules))
    (root / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": mode_mean,
                                                                "pooling_mode_cls_token": not mode_mean}))
    return root


def test_mean_pooling_with_normalisation_is_recognised(tmp_path):
    assert mean_pooled(_st_folder(tmp_path / "mean"))
    assert not mean_pooled(_st_folder(tmp_path / "cls", mode_mean=False))
    assert not mean_pooled(_st_folder(tmp_path / "raw", normalize=False))
    assert not mean_pooled(tmp_path / "nothing-here")
