"""A year of studio use in a store: N jobs, each with its prompt and one image, written straight into SQLite.

Realistic shape for the gallery's queries: prompts of 8–16 words from a vocabulary of ~2,000 with a
common word ("portrait", in 20 % of prompts) and a rare one ("zanzibarite", in 20 prompts), about 1 % of
images liked, ~2 % of images in boards (five boards of very different sizes, some images in two), 6 % action
runs (upscale, vary, zoom) pointing at an earlier image, a few failures and deleted jobs, dates spread over a
year, a full API-format graph per job. Ids are ULIDs in date order, as the studio makes them, so cursors page
exactly as they do in a real store.

The store must already be migrated and hold the owner (start the studio on it once). 1,000,000 jobs take
about a minute and a half on one core.

Run: .venv/bin/python bench/seed_gallery.py STUDIO_DB --jobs 1000000 [--owner 1] [--calls 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

COMMON_WORD = "portrait"
RARE_WORD = "zanzibarite"
RARE_COUNT = 20
COMMON_SHARE = 0.20
LIKED_SHARE = 0.01
ACTION_SHARE = 0.06
DELETED_SHARE = 0.002
# Board membership: ~2 % of images, over boards from a large one to a small one; the share of the board-
# filtered images that each board holds, and the share also put in a second board.
BOARD_SHARE = 0.02
BOARD_WEIGHTS = (0.55, 0.25, 0.12, 0.06, 0.02)
BOARD_NAMES = ("Keepers", "Portfolio", "Moodboard", "Client: Harbor", "Print")
TWICE_SHARE = 0.1
YEAR = timedelta(days=365)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_SUBJECTS = (
    "cat dog fox owl heron whale dragon knight witch robot astronaut samurai monk dancer violinist gardener "
    "lighthouse castle village forest desert glacier canyon harbor market library cathedral greenhouse "
    "mountain river waterfall meadow island volcano nebula galaxy city street alley rooftop subway bridge"
).split()
_STYLES = (
    "cinematic watercolor oil painting ink sketch photograph isometric low-poly pixel-art baroque art-nouveau "
    "ukiyo-e surreal minimalist brutalist vaporwave noir pastel impressionist gouache charcoal"
).split()
_LIGHT = "golden-hour dusk dawn moonlight neon candlelight overcast foggy rainy sunlit backlit studio".split()
_SYLLABLES = "ka lo mi ra ten vo shi an el dor bri quo zen fa lu mer tis gor ven pal".split()


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words = set(_SUBJECTS + _STYLES + _LIGHT)
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    words.discard(COMMON_WORD)
    words.discard(RARE_WORD)
    return sorted(words)


def ulid(prefix: str, millis: int, rand: int) -> str:
    value = (millis << 80) | rand
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return prefix + "".join(reversed(chars))


def _graph(text: str, seed: int) -> str:
    graph = {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": seed,
                "steps": 28,
                "cfg": 6.5,
                "sampler_name": "dpmpp_2m",
                "scheduler": "karras",
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl/juggernautXL_v9.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1344, "height": 768, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, lowres, watermark", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "studio/ComfyUI", "images": ["8", 0]}},
    }
    return json.dumps(graph, separators=(",", ":"))


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S.%f")


def board_ids(owner_id: int) -> list[str]:
    """The seeded boards' ids (fixed, so tests and benches can name them); the first is the largest."""
    return [ulid("b_", 1_700_000_000_000 + owner_id * 100 + n, n) for n in range(len(BOARD_NAMES))]


def seed(db_path: Path, jobs: int, *, owner_id: int = 1, rng_seed: int = 7, chunk: int = 20_000) -> dict[str, int]:
    """Append ``jobs`` jobs (prompt, job, image each) for ``owner_id``; returns what was written."""
    rng = random.Random(rng_seed)
    vocabulary = _vocabulary(rng, 2000)
    rare = set(rng.sample(range(jobs), min(RARE_COUNT, jobs)))
    end = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=1)
    start = end - YEAR
    step_ms = max(1, int(YEAR.total_seconds() * 1000 / max(jobs, 1)))
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")  # 256 MB
    # Bulk load without the indexes and the FTS trigger, then build them once: minutes become seconds.
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('jobs', 'images', 'prompts', 'board_items')"
    ).fetchall()
    (fts_trigger,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'prompts_fts_ai'").fetchone()
    with db:
        for name, _sql in indexes:
            db.execute(f'DROP INDEX "{name}"')
        db.execute("DROP TRIGGER prompts_fts_ai")
    next_prompt = (db.execute("SELECT coalesce(max(id), 0) FROM prompts").fetchone()[0] or 0) + 1
    counts = {"jobs": 0, "liked": 0, "actions": 0, "deleted": 0, "common": 0, "rare": 0, "board_items": 0}
    boards = board_ids(owner_id)
    now_stamp = _stamp(end)
    with db:
        db.executemany(
            "INSERT OR IGNORE INTO boards (id, owner_id, name, name_key, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(b, owner_id, n, n.casefold(), now_stamp, now_stamp) for b, n in zip(boards, BOARD_NAMES, strict=True)],
        )
    image_ids: list[str] = []
    for first in range(0, jobs, chunk):
        prompts, job_rows, images, items = [], [], [], []
        for n in range(first, min(first + chunk, jobs)):
            at = start + timedelta(milliseconds=n * step_ms + rng.randint(0, step_ms - 1))
            millis = int(at.replace(tzinfo=timezone.utc).timestamp() * 1000)
            words = rng.sample(vocabulary, rng.randint(8, 16))
            if rng.random() < COMMON_SHARE:
                words.insert(rng.randrange(len(words)), COMMON_WORD)
                counts["common"] += 1
            if n in rare:
                words.insert(rng.randrange(len(words)), RARE_WORD)
                counts["rare"] += 1
            text = " ".join(words)
            if rng.random() < 0.3:
                text += f" --ar {rng.choice(['16:9', '3:2', '1:1', '9:16'])} --style {rng.choice(_STYLES)}"
            prompt_row = next_prompt + n
            job_id = ulid("j_", millis, rng.getrandbits(79))
            image_id = ulid("i_", millis + 20_000, rng.getrandbits(79))
            stamp = _stamp(at)
            done = _stamp(at + timedelta(seconds=20))
            action_slot = parent = None
            if image_ids and rng.random() < ACTION_SHARE:
                action_slot = rng.choice(["upscale", "vary", "zoom"])
                parent = image_ids[rng.randrange(max(0, len(image_ids) - 5000), len(image_ids))]
                counts["actions"] += 1
            state = "error" if rng.random() < 0.01 else "success"
            deleted = stamp if rng.random() < DELETED_SHARE else None
            counts["deleted"] += deleted is not None
            seed_value = rng.getrandbits(48)
            prompts.append((prompt_row, owner_id, text, " ".join(words), stamp))
            job_rows.append(
                (
                    job_id,
                    owner_id,
                    prompt_row,
                    f"{job_id[2:].lower()}-bench",
                    state,
                    _graph(" ".join(words), seed_value),
                    "[]",
                    "{}",
                    float(n),
                    "{}",
                    json.dumps({"type": "execution_error", "message": "out of memory"}) if state == "error" else None,
                    "{}",
                    0,
                    stamp,
                    stamp,
                    done,
                    action_slot,
                    json.dumps({"seed": seed_value}),
                    parent,
                    deleted,
                )
            )
            liked = _stamp(at + timedelta(minutes=5)) if rng.random() < LIKED_SHARE else None
            counts["liked"] += liked is not None
            if state == "success":
                images.append(
                    (
                        image_id,
                        owner_id,
                        job_id,
                        "output",
                        f"ComfyUI_{n:07d}_.png",
                        "studio",
                        "output",
                        "9",
                        "image/png",
                        1344,
                        768,
                        1_800_000 + rng.randint(0, 400_000),
                        1,
                        done,
                        liked,
                        deleted,
                    )
                )
                image_ids.append(image_id)
                if rng.random() < BOARD_SHARE:
                    chosen = rng.choices(range(len(boards)), BOARD_WEIGHTS)[0]
                    items.append((boards[chosen], image_id, job_id, done))
                    if rng.random() < TWICE_SHARE:
                        items.append((boards[(chosen + 1) % len(boards)], image_id, job_id, done))
        with db:
            db.executemany(
                "INSERT INTO prompts (id, owner_id, text, clean_text, created_at) VALUES (?, ?, ?, ?, ?)", prompts
            )
            db.executemany(
                "INSERT INTO jobs (id, owner_id, prompt_row_id, prompt_id, state, graph, patches, extra, number,"
                ' progress, error, node_errors, "foreign", created_at, started_at, finished_at, action_slot,'
                " parameters, parent_image_id, deleted_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                job_rows,
            )
            db.executemany(
                "INSERT INTO images (id, owner_id, job_id, kind, filename, subfolder, folder_type, node_id, mime,"
                " width, height, size_bytes, has_thumb, created_at, liked_at, deleted_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                images,
            )
            db.executemany("INSERT INTO board_items (board_id, image_id, job_id, added_at) VALUES (?, ?, ?, ?)", items)
        counts["jobs"] += len(job_rows)
        counts["board_items"] += len(items)
    with db:
        for _name, sql in indexes:
            db.execute(sql)
        db.execute(fts_trigger)
        db.execute("INSERT INTO prompts_fts(prompts_fts) VALUES ('rebuild')")
    db.close()
    return counts


CALL_OPERATIONS = (
    ("submit", "POST", "/prompt", 0.35),
    ("history", "GET", "/history/{prompt_id}", 0.35),
    ("view", "GET", "/view", 0.25),
    ("object_info", "GET", "/object_info", 0.05),
)
GUEST_CALL_SHARE = 0.02  # a second user's calls: an owner's page must not walk them


def seed_calls(db_path: Path, calls: int, *, owner_id: int = 1, rng_seed: int = 11, chunk: int = 50_000) -> int:
    """Append ``calls`` logged ComfyUI calls, spread over the jobs already seeded (newest calls last).

    Most are ``owner_id``'s, about their jobs (submit, history, view); ~2 % are a second user's (made here).
    """
    rng = random.Random(rng_seed)
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")
    with db:
        db.execute(
            "INSERT OR IGNORE INTO users (username, role, disabled, created_at) VALUES ('bench-guest', 'user', 0, ?)",
            (_stamp(datetime.now(timezone.utc)),),
        )
    (guest,) = db.execute("SELECT id FROM users WHERE username = 'bench-guest'").fetchone()
    jobs = db.execute(
        "SELECT id, prompt_id, created_at FROM jobs WHERE owner_id = ? ORDER BY id", (owner_id,)
    ).fetchall()
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name = 'comfy_calls'"
    ).fetchall()
    with db:
        for name, _sql in indexes:
            db.execute(f'DROP INDEX "{name}"')
    operations = [op[:3] for op in CALL_OPERATIONS]
    weights = [op[3] for op in CALL_OPERATIONS]
    end = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=1)
    for first in range(0, calls, chunk):
        rows = []
        for n in range(first, min(first + chunk, calls)):
            job_id, prompt_id, created = jobs[n * len(jobs) // calls] if jobs else (None, None, _stamp(end))
            operation, method, path = rng.choices(operations, weights)[0]
            owner, job = owner_id, job_id
            if rng.random() < GUEST_CALL_SHARE:
                owner, job, operation, method, path = guest, None, "object_info", "GET", "/object_info"
            request = response = None
            if operation == "submit":
                request = json.dumps({"prompt_id": prompt_id, "front": False, "client_id": "studio", "prompt": {}})
                response = json.dumps({"prompt_id": prompt_id, "number": n, "node_errors": {}})
            elif operation == "history":
                path = path.format(prompt_id=prompt_id)
                response = json.dumps({prompt_id: {"status": {"status_str": "success", "completed": True}}})
            elif operation == "view":
                response = json.dumps({"bytes": 1_800_000 + rng.randint(0, 400_000), "sha256": "0" * 64})
            ok = rng.random() > 0.01
            runtime = rng.uniform(0.5, 40.0)
            rows.append(
                (operation, method, path, request, response, 200 if ok else 500, ok, None if ok else "HTTP 500",
                 created, created, runtime, job, owner)
            )  # fmt: skip
        with db:
            db.executemany(
                "INSERT INTO comfy_calls (operation, method, path, request, response, status, ok, error, started_at,"
                " ended_at, runtime_ms, job_id, owner_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    with db:
        for _name, sql in indexes:
            db.execute(sql)
    db.close()
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--owner", type=int, default=1)
    parser.add_argument("--calls", type=int, default=0, help="also log this many ComfyUI calls")
    args = parser.parse_args()
    started = time.perf_counter()
    counts = seed(args.db, args.jobs, owner_id=args.owner)
    if args.calls:
        counts["calls"] = seed_calls(args.db, args.calls, owner_id=args.owner)
    print(json.dumps({**counts, "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
