"""AVSBench S4 and MS3 sets written here by hand in the published layout (PIL, numpy and scipy,
not the project's writer), indexed, evaluated, and scored again independently.

The independent scoring follows the published code, written again here: FNAC's test-time input
(PIL bicubic resize, ImageNet normalisation; the centred 3 s of the WAV, scipy's spectrogram, log,
divided by 12), the map as the image features' dot product with the audio embedding over tau,
upsampled by torch and min-max normalised; the masks read as AVSBench's loader reads them
(``convert('1')``); cIoU as the EZ-VSL / FNAC test script computes it; mIoU and the F-score as
AVSBench's ``mask_iou`` and ``Eval_Fmeasure`` compute them (torch, per batch), run with one batch
holding the whole split. The project's figures must agree (within 0.01, per frame within 1e-3).
The default suite runs it with a small model input (64 px frames for the model, 8 kHz sound);
``slow`` at the published sizes (224 px, 16 kHz).
"""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import signal
from scipy.io import wavfile

from fnac.config import AudioConfig, ImageConfig
from fnac.model import FNAC, ModelConfig
from train.datasets import AVDataset, DatasetError, collate_skipping, open_testset
from train.evaluate import evaluate, evaluate_av

SIDE, SECONDS = 224, 5.0  # AVSBench's frames and clips
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
S4_VIDEOS = [("vidA", "dog_barking"), ("vidB", "playing_piano"), ("vidC", "dog_barking")]
MS3_VIDEOS = ["multiX", "multiY"]
EMPTY = ("vidB", 4)  # the S4 frame whose mask is empty


def blocky_frame(rng: np.random.Generator) -> np.ndarray:
    """A 224 x 224 frame of 16-pixel blocks (small as a PNG) with a bright disc somewhere."""
    frame = np.kron(rng.integers(0, 200, (14, 14, 3)), np.ones((16, 16, 1))).astype(np.uint8)
    yy, xx = np.mgrid[:SIDE, :SIDE]
    cx, cy, r = rng.integers(40, 184, 2).tolist() + [int(rng.integers(20, 45))]
    frame[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.integers(150, 256, 3)
    return frame


def random_mask(rng: np.random.Generator, n_objects: int = 1) -> np.ndarray:
    """Ellipses and rectangles, as 0 / 255 grey (what AVSBench's PNG masks hold)."""
    mask = np.zeros((SIDE, SIDE), np.uint8)
    yy, xx = np.mgrid[:SIDE, :SIDE]
    for _ in range(n_objects):
        x0, y0 = rng.integers(0, 150, 2)
        w, h = rng.integers(30, 120, 2)
        if rng.random() < 0.5:
            mask[y0 : y0 + h, x0 : x0 + w] = 255
        else:
            inside = ((xx - x0 - w / 2) / (w / 2)) ** 2 + ((yy - y0 - h / 2) / (h / 2)) ** 2 < 1
            mask[inside] = 255
    return mask


def write_wave(path, rng: np.random.Generator, rate: int, channels: int = 1) -> None:
    """5 s of a tone plus noise, 16-bit PCM, as AVSBench's audio_wav/ holds."""
    t = np.arange(int(SECONDS * rate)) / rate
    pitch = rng.uniform(200, 2000)
    mono = 0.3 * np.sin(2 * np.pi * pitch * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    waves = [mono + 0.05 * rng.standard_normal(t.size) for _ in range(channels)]
    pcm = (np.clip(np.stack(waves, axis=1), -1, 1) * 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, pcm if channels > 1 else pcm[:, 0])


def save(path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_csv(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)


def make_s4(root, rate: int = 16000, seed: int = 0):
    """``root/Single-source``: three test videos (one stereo WAV, one empty mask), plus rows of
    other splits whose files are absent (they must not be read)."""
    rng = np.random.default_rng(seed)
    folder, data = root / "Single-source", root / "Single-source" / "s4_data"
    rows = [("name", "start_time", "category", "split")]
    rows += [(v, 0, c, "test") for v, c in S4_VIDEOS]
    rows += [("trainOnly", 2, "dog_barking", "train"), ("valOnly", 0, "helicopter", "val")]
    write_csv(folder / "s4_meta_data.csv", rows)
    for k, (video, category) in enumerate(S4_VIDEOS):
        write_wave(data / "audio_wav/test" / category / f"{video}.wav", rng, rate, 2 if k else 1)
        for i in range(1, 6):
            save(data / "visual_frames/test" / category / video / f"{video}_{i}.png",
                 blocky_frame(rng))  # fmt: skip
            mask = np.zeros((SIDE, SIDE), np.uint8) if (video, i) == EMPTY else random_mask(rng)
            save(data / "gt_masks/test" / category / video / f"{video}_{i}.png", mask)
    return folder


def make_ms3(root, rate: int = 16000, seed: int = 1):
    """``root/Multi-sources``: two test videos, frames without a split level, one video in
    AVSBench's ``<video>.mp4_<i>.png`` spelling and one in the plain ``<video>_<i>.png``."""
    rng = np.random.default_rng(seed)
    folder, data = root / "Multi-sources", root / "Multi-sources" / "ms3_data"
    rows = [("video_id", "split"), *((v, "test") for v in MS3_VIDEOS), ("other", "train")]
    write_csv(folder / "ms3_meta_data.csv", rows)
    for k, video in enumerate(MS3_VIDEOS):
        write_wave(data / "audio_wav" / "test" / f"{video}.wav", rng, rate)
        for i in range(1, 6):
            name = f"{video}.mp4_{i}.png" if k == 0 else f"{video}_{i}.png"
            save(data / "visual_frames" / video / name, blocky_frame(rng))
            save(data / "gt_masks/test" / video / f"{video}_{i}.png", random_mask(rng, 2))
    return folder


# --------------------------------------------------------------------- the independent scoring


def published_frame(path, size: int) -> torch.Tensor:
    rgb = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    x = (np.asarray(rgb, np.float64) / 255 - MEAN) / STD
    return torch.from_numpy(x.transpose(2, 0, 1).astype(np.float32))


def published_spectrogram(path) -> torch.Tensor:
    rate, pcm = wavfile.read(path)
    audio = (pcm / 32768.0).reshape(pcm.shape[0], -1).T  # (C, N)
    start = int(max(audio.shape[1] / rate / 2 - 1.5, 0) * rate)
    audio = np.clip(audio[:, start : start + 3 * rate], -1, 1).mean(axis=0)
    _, _, spec = signal.spectrogram(audio, rate, nperseg=512, noverlap=274)
    return torch.from_numpy((np.log(spec + 1e-7) / 12).astype(np.float32))[None]


def avsbench_mask(path) -> torch.Tensor:
    """As AVSBench's loader: PIL mode '1', then ToTensor (0. / 1.)."""
    return torch.from_numpy(np.asarray(Image.open(path).convert("1"), np.float32))


def published_ciou(heat: np.ndarray, gt: np.ndarray) -> float:
    thr = np.sort(heat.flatten())[int(SIDE * SIDE / 2)]
    infer = np.zeros((SIDE, SIDE))
    infer[heat >= thr] = 1
    return float(np.sum(infer * gt) / (np.sum(gt) + np.sum(infer * (gt == 0))))


def published_auc(cious) -> float:
    x = [0.05 * i for i in range(21)]
    y = [np.sum(np.array(cious) >= t) / len(cious) for t in x]
    return float(sum((x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2 for i in range(20)))


def avsbench_mask_iou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> float:
    """AVSBench's ``mask_iou`` on an already binary prediction (N, H, W)."""
    n, num_pixels = pred.size(0), pred.size(-1) * pred.size(-2)
    no_obj = target.sum(2).sum(1) == 0
    inter = (pred * target).sum(2).sum(1)
    union = torch.max(pred, target).sum(2).sum(1)
    inter_no_obj = ((1 - target) * (1 - pred)).sum(2).sum(1)
    inter[no_obj] = inter_no_obj[no_obj]
    union[no_obj] = num_pixels
    return float(torch.sum(inter / (union + eps)) / n)


def avsbench_eval_pr(pred: np.ndarray, gt: np.ndarray, num: int) -> tuple[np.ndarray, ...]:
    """AVSBench's ``_eval_pr``: precision and recall of ``pred >= t`` for its float32 thresholds
    (its loop over them done at once, counting in numpy, with the same arithmetic)."""
    thresholds = torch.linspace(0, 1 - 1e-10, num).numpy()
    y = pred[None] >= thresholds[:, None, None]  # (num, H, W)
    tp = np.count_nonzero(y & (gt > 0), axis=(1, 2)).astype(np.float32)
    hot = np.count_nonzero(y, axis=(1, 2)).astype(np.float32)
    return tp / (hot + np.float32(1e-20)), tp / (gt.sum(dtype=np.float32) + np.float32(1e-20))


def avsbench_fmeasure(pred: np.ndarray, gt: np.ndarray, pr_num: int = 255) -> float:
    """AVSBench's ``Eval_Fmeasure`` for one batch (no sigmoid: the heatmaps are in [0, 1])."""
    beta2, avg_f, img_num = 0.3, 0.0, 0
    score = np.zeros(pr_num)
    for k in range(pred.shape[0]):
        if np.mean(gt[k]) == 0.0:  # examples with an all-black mask are left out
            continue
        prec, recall = avsbench_eval_pr(pred[k], gt[k], pr_num)
        with np.errstate(invalid="ignore"):
            f_score = (1 + beta2) * prec * recall / (beta2 * prec + recall)
        f_score[f_score != f_score] = 0
        avg_f += f_score
        img_num += 1
        score = avg_f / img_num
    return float(score.max())


def box_of(mask: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    if ys.size:
        out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 1
    return out


def frames_of(folder, kind: str) -> list[tuple[str, int, object, object, object]]:
    """(video, i, frame path, mask path, wav path) of every test frame, from the CSV."""
    out = []
    if kind == "avsbench-s4":
        data = folder / "s4_data"
        for row in list(csv.reader((folder / "s4_meta_data.csv").open()))[1:]:
            if row[3] == "test":
                video, category = row[0], row[2]
                for i in range(1, 6):
                    out.append((video, i,
                                data / "visual_frames/test" / category / video / f"{video}_{i}.png",
                                data / "gt_masks/test" / category / video / f"{video}_{i}.png",
                                data / "audio_wav/test" / category / f"{video}.wav"))  # fmt: skip
    else:
        data = folder / "ms3_data"
        for row in list(csv.reader((folder / "ms3_meta_data.csv").open()))[1:]:
            if row[1] == "test":
                video = row[0]
                for i in range(1, 6):
                    frame = data / "visual_frames" / video / f"{video}.mp4_{i}.png"
                    if not frame.is_file():
                        frame = data / "visual_frames" / video / f"{video}_{i}.png"
                    mask = data / "gt_masks/test" / video / f"{video}_{i}.png"
                    out.append((video, i, frame, mask, data / "audio_wav/test" / f"{video}.wav"))
    return out


@torch.no_grad()
def independent_figures(model: FNAC, folder, kind: str, size: int) -> dict:
    frames = frames_of(folder, kind)
    images = torch.stack([published_frame(f[2], size) for f in frames])
    specs = torch.stack([published_spectrogram(f[4]) for f in frames])
    masks = torch.stack([avsbench_mask(f[3]) for f in frames])
    v, a = model.encode_image(images), model.encode_audio(specs)
    raw = (v * a[:, :, None, None]).sum(dim=1) / model.tau  # (N, h, w)
    out = {"ids": [f"{f[0]}_{f[1]}" for f in frames]}
    for mode, align in (("bicubic", False), ("bilinear", True)):
        up = F.interpolate(raw[:, None], size=(SIDE, SIDE), mode=mode, align_corners=align)[:, 0]
        lo = up.amin(dim=(1, 2), keepdim=True)
        heat = (up - lo) / (up.amax(dim=(1, 2), keepdim=True) - lo)
        h, m = heat.numpy(), masks.numpy()
        cious = [published_ciou(h[k], m[k]) for k in range(len(h))]  # an empty mask: 0
        boxes = [published_ciou(h[k], box_of(m[k])) for k in range(len(h))]
        thr = torch.tensor([float(np.sort(x.flatten())[SIDE * SIDE // 2]) for x in h])
        binary = (heat >= thr[:, None, None]).float()
        ious = [avsbench_mask_iou(binary[k : k + 1], masks[k : k + 1]) for k in range(len(h))]
        batches = range(0, len(h), 5) if mode == "bicubic" else ()  # AVSBench's loop, 5 a batch
        per_batch = [avsbench_fmeasure(h[k : k + 5], m[k : k + 5]) for k in batches]
        scored, boxed = cious, boxes
        out[mode] = {
            "ciou@0.5": np.mean(np.array(scored) >= 0.5),
            "ciou@0.3": np.mean(np.array(scored) >= 0.3),
            "auc": published_auc(scored),
            "mean_ciou": np.mean(scored),
            "box/ciou@0.5": np.mean(np.array(boxed) >= 0.5),
            "box/ciou@0.3": np.mean(np.array(boxed) >= 0.3),
            "box/auc": published_auc(boxed),
            "box/mean_ciou": np.mean(boxed),
            "miou": avsbench_mask_iou(binary, masks),  # one batch: the whole split
            "fscore": avsbench_fmeasure(h, m),
            "per_batch_fscore": float(np.mean(per_batch)) if per_batch else None,
            "per_frame": list(zip(cious, boxes, ious, strict=True)),
        }
    return out


def approx(value: float):
    return pytest.approx(value, abs=1e-3)  # per frame


@pytest.fixture(scope="module")
def model() -> FNAC:
    torch.manual_seed(0)
    return FNAC(ModelConfig(dim=16)).eval()


@pytest.mark.parametrize(
    "kind, size, rate",
    [
        ("avsbench-s4", 64, 8000),
        ("avsbench-ms3", 64, 8000),
        pytest.param("avsbench-s4", 224, 16000, marks=pytest.mark.slow),
        pytest.param("avsbench-ms3", 224, 16000, marks=pytest.mark.slow),
    ],
)
def test_figures_match_an_independent_scoring_by_avsbench_rules(tmp_path, model, kind, size, rate):
    make = make_s4 if kind == "avsbench-s4" else make_ms3
    folder = make(tmp_path, rate)
    testset = open_testset(folder)  # told apart by its meta CSV
    assert testset.kind == kind and testset.split == "test" and testset.dropped == {}
    n = 15 if kind == "avsbench-s4" else 10
    assert len(testset.entries) == n
    image = ImageConfig(size=size)
    report = evaluate(model, testset, AudioConfig(sample_rate=rate), image, batch=4)
    want = independent_figures(model, folder, kind, size)
    assert report["testset"] == kind and report["samples"] == n and report["skipped"] == 0
    assert report["empty_masks"] == (1 if kind == "avsbench-s4" else 0)
    assert [r["id"] for r in report["per_sample"]] == want["ids"]
    for mode in ("bicubic", "bilinear"):
        got = report["results"][mode]["av"]
        for key, value in want[mode].items():
            if key == "per_frame":
                for rec, (c, b, iou) in zip(report["per_sample"], value, strict=True):
                    assert rec[f"{mode}/av"] == approx(c)
                    assert rec[f"{mode}/av/box"] == approx(b)
                    assert rec[f"{mode}/av/iou"] == approx(iou)
            elif key != "per_batch_fscore":
                assert got[key] == pytest.approx(value, abs=0.01), (mode, key)
    # AVSBench's per-batch average is another number on the same maps: the project's is the whole
    # split's, whatever its own batch size (4 here)
    got = report["results"]["bicubic"]["av"]["fscore"]
    assert abs(want["bicubic"]["per_batch_fscore"] - got) > 1e-3
    if kind == "avsbench-s4":
        rec = next(r for r in report["per_sample"] if r["id"] == "vidB_4")
        assert rec["video"] == "vidB" and rec["frame"] == 4 and rec["category"] == "playing_piano"
        assert rec["bicubic/av"] == 0.0 and rec["bicubic/av/box"] == 0.0  # nothing to point at
        assert rec["bicubic/av/iou"] > 0  # the backgrounds' IoU


# ------------------------------------------------------------------- layouts and bad input


def test_masks_are_read_as_avsbench_reads_them(tmp_path):
    from fnac.image import load_mask

    grey = random_mask(np.random.default_rng(3))
    want = grey > 127
    for mode in ("L", "RGB", "P", "1"):
        path = tmp_path / f"{mode}.png"
        Image.fromarray(grey).convert(mode).save(path)
        assert np.array_equal(load_mask(path), want), mode
    save(tmp_path / "ones.png", (grey > 0).astype(np.uint8))  # 0 / 1 values: dark, so empty
    assert not load_mask(tmp_path / "ones.png").any()
    with pytest.raises(ValueError, match="is 224x224, its frame 100x90"):
        load_mask(tmp_path / "L.png", (100, 90))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="not a readable mask image"):
        load_mask(tmp_path / "bad.png")


def test_a_folder_holding_both_sets_evaluates_both_and_a_split_is_chosen(tmp_path, caplog):
    from train.checkpoint_eval import EvalConfig, open_testsets

    make_s4(tmp_path, 8000)
    make_ms3(tmp_path, 8000)
    sets = open_testsets(EvalConfig(checkpoint="unused.pth", data=str(tmp_path)))
    assert [(s.kind, len(s.entries)) for s in sets] == [("avsbench-s4", 15), ("avsbench-ms3", 10)]
    assert sets[1].entries[0].image.name == "multiX.mp4_1.png"  # AVSBench's own spelling
    assert sets[1].entries[5].image.name == "multiY_1.png"
    assert sets[0].entries[7].clip == "vidB" and sets[0].entries[7].frame_index == 3
    with pytest.raises(DatasetError, match="holds both AVSBench sets: pass --testset"):
        open_testset(tmp_path)
    assert open_testset(tmp_path, "avsbench-ms3").kind == "avsbench-ms3"
    # val has a row whose files are absent: counted, then refused as a set with nothing usable
    with caplog.at_level(logging.WARNING), pytest.raises(DatasetError, match="no usable frame"):
        open_testset(tmp_path, "avsbench-s4", split="val")
    assert "5 samples skipped, no audio_wav/ file (e.g. valOnly_1" in caplog.text
    with pytest.raises(DatasetError, match="holds no ms3_meta_data.csv"):
        open_testset(tmp_path / "Single-source", "avsbench-ms3")


def write_meta(folder, text: str):
    (folder / "s4_meta_data.csv").write_text(text)
    return folder


@pytest.mark.parametrize(
    "text, problem",
    [
        ("name,start_time,category\nvidA,0,dog_barking\n", "does not have the columns"),
        ("vidA,0,dog_barking,test\n", "does not have the columns"),  # no header row
        ("name,split\nvidA,test\n", "the category in column 2"),
        ("", "does not have the columns"),
        (
            "name,start_time,category,split\nvidA,0,dog_barking,train\n",
            "no row of split 'test' (rows per split: train 1); evaluate another split",
        ),
        ("name,start_time,category,split\n,0,x,test\n", "none of the 1 annotations is usable"),
    ],
)
def test_a_meta_csv_without_what_is_expected_is_one_clear_error(tmp_path, text, problem):
    folder = make_s4(tmp_path, 8000)
    with pytest.raises(DatasetError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        open_testset(write_meta(folder, text))


def test_an_unreadable_meta_csv_or_no_data_folder_is_one_clear_error(tmp_path):
    folder = make_s4(tmp_path, 8000)
    (folder / "s4_meta_data.csv").write_bytes(b"\xff\xfe\x00name,split")
    with pytest.raises(DatasetError, match="not a readable CSV"):
        open_testset(folder)
    (tmp_path / "Multi-sources").mkdir()
    write_csv(tmp_path / "Multi-sources" / "ms3_meta_data.csv", [("name", "split"), ("x", "test")])
    with pytest.raises(DatasetError, match="no ms3_data/ folder beside it"):
        open_testset(tmp_path / "Multi-sources")


def test_missing_and_broken_files_are_counted_and_reported(tmp_path, model, caplog):
    from train.checkpoint_eval import headline

    folder = make_s4(tmp_path, 8000)
    data = folder / "s4_data"
    (data / "gt_masks/test/dog_barking/vidA/vidA_2.png").unlink()
    (data / "visual_frames/test/playing_piano/vidB/vidB_1.png").unlink()
    (data / "audio_wav/test/dog_barking/vidC.wav").unlink()
    save(data / "gt_masks/test/dog_barking/vidA/vidA_3.png", np.zeros((100, 100), np.uint8))
    (data / "gt_masks/test/dog_barking/vidA/vidA_5.png").write_bytes(b"garbage")
    a_row = "name,start_time,category,split\nvidA,0,dog_barking,test\nvidB,0,playing_piano,test\n"
    write_meta(folder, a_row + "vidC,0,dog_barking,test\nbad/name,0,x,test\n")
    with caplog.at_level(logging.WARNING):
        testset = open_testset(folder)
    assert testset.dropped == {"no frame": 1, "no mask": 1, "no audio": 5}
    assert len(testset.entries) == 15 - 7
    for said in (
        "no gt_masks/ file (e.g. vidA_2)",
        "no frame image (e.g. vidB_1)",
        "5 samples skipped, no audio_wav/ file",
        "annotations malformed (e.g. line 5",
    ):
        assert said in caplog.text
    caplog.clear()
    dataset = AVDataset(testset.entries, AudioConfig(sample_rate=8000), ImageConfig(size=64))
    with caplog.at_level(logging.WARNING):
        batch = collate_skipping([dataset[i] for i in range(len(dataset))])
    assert batch["skipped"] == 2 and "vidA_3" not in batch["id"] and "vidA_5" not in batch["id"]
    assert "is 100x100, its frame 224x224" in caplog.text and "not a readable mask" in caplog.text
    assert batch["mask"].shape == (6, SIDE, SIDE) and batch["mask"].dtype == torch.bool

    from fnac.resnet import resnet18

    report = evaluate(
        model, testset, AudioConfig(sample_rate=8000), ImageConfig(size=64),
        obj_model=resnet18().eval(), overlays=tmp_path / "overlays",
    )  # fmt: skip
    assert report["samples"] == 6 and report["skipped"] == 2 and report["videos"] == 2
    assert report["dropped"] == testset.dropped and report["empty_masks"] == 1
    for variant in ("av", "obj", "av+obj"):
        figures = report["results"]["bilinear"][variant]
        assert {"box/auc", "miou", "fscore"} <= set(figures) and 0 <= figures["fscore"] <= 1
    # what training reports after each epoch, on an AVSBench set given as its test set
    headline_figures = evaluate_av(
        model, testset, AudioConfig(sample_rate=8000), ImageConfig(size=64)
    )
    assert headline_figures == {k: report["results"]["bicubic"]["av"][k] for k in headline_figures}
    assert set(headline_figures) == {"ciou@0.5", "ciou@0.3", "auc", "mean_ciou"}
    said = headline(report)
    assert "6 frames, 1 with an empty mask" in said and "2 skipped at loading" in said
    assert "left out: 1 no frame, 1 no mask, 5 no audio" in said and "mIoU" in said
    overlay = np.asarray(Image.open(tmp_path / "overlays" / "vidA_1.png"))
    mask = np.asarray(Image.open(data / "gt_masks/test/dog_barking/vidA/vidA_1.png")) > 127
    inner = mask.copy()
    for shift, axis in ((3, 0), (-3, 0), (3, 1), (-3, 1)):
        inner &= np.roll(mask, shift, axis)
    edge = mask & ~inner
    assert (overlay[edge & mask] == 255).all(axis=1).mean() > 0.5  # the outline, in white
    assert not (overlay[inner] == 255).all(axis=1).any()


def test_a_set_whose_every_mask_is_empty_is_refused(tmp_path, model):
    folder = make_ms3(tmp_path, 8000)
    for path in (folder / "ms3_data" / "gt_masks").rglob("*.png"):
        save(path, (np.asarray(Image.open(path)) > 0).astype(np.uint8))  # saved as 0 / 1
    testset = open_testset(folder)
    with pytest.raises(ValueError, match="every mask of .* read as empty.*rescale them to 0 / 255"):
        evaluate(model, testset, AudioConfig(sample_rate=8000), ImageConfig(size=64))
