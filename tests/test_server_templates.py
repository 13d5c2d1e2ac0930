"""A checkpoint's chat template is code the server runs on what clients send: it renders off the event
loop, within a budget of template lines (counted: the same on any machine), seconds and memory, so a
template that loops over the messages without end or builds gigabytes is a 400 for that request while
the server answers /health and other requests; one that cannot render a short conversation within the
budget is refused before `bench serve` starts (exit 2, naming it)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest

from bench.serve.text import Codec, RenderBudget, TemplateRefused, bounded, check_chat_template
from test_api import HANG_S
from test_server_limits import bench_serving, served_meanwhile

WORDS = ["hello", "there", "hi", "how", "are", "you", "i", "am", "well", "thank", "user", "assistant", "x"]

# the cost of each grows with what the client sends (its messages' lengths), or without end
QUADRATIC = ("{% for m in messages %}{% for a in m['content'] %}{% for b in m['content'] %}{% endfor %}{% endfor %}"
             "{{ m['role'] }} {{ m['content'] }}\n{% endfor %}")
ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{{ messages[0]['content'] }}"
DOUBLING = ("{% set ns = namespace(s=messages[-1]['content']) %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
            "{% endfor %}{{ ns.s[:5] }}")
YIELDING = "{% for i in range(100000) %}{% for m in messages %}{{ m['content'] }}{% endfor %}{% endfor %}"
HOSTILE = {"quadratic": QUADRATIC, "endless": ENDLESS, "doubling": DOUBLING, "yielding": YIELDING}
BUDGET = RenderBudget(lines=200_000, seconds=HANG_S, memory_bytes=64 << 20)


def tokenizer(template: str | None):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[UNK]", "[PAD]", "</s>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="</s>")
    hf.chat_template = template
    return hf


def chat(url, content: str, **extra):
    body = {"model": "fake", "messages": [{"role": "user", "content": content}], "max_tokens": 3, **extra}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=HANG_S)


def test_a_template_renders_off_the_event_loop_within_its_budget():
    codec = Codec(tokenizer(QUADRATIC), 100)
    assert codec.chat([("user", "hello there")], BUDGET) == codec.encode("user hello there")
    with bench_serving(codec=codec, budget=BUDGET) as (url, *_):
        r = chat(url, "hello there")
        assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == 3


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_template_over_its_budget_is_a_400_for_that_request_and_the_server_goes_on(kind):
    with bench_serving(codec=Codec(tokenizer(HOSTILE[kind]), 100), budget=BUDGET) as (url, *_):
        r = chat(url, "x" * 10_000)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "template_budget" and err["param"] == "messages" and "more than" in err["message"]
        served_meanwhile(url)


def test_the_server_answers_meanwhile_while_a_template_runs():
    """An endless render in flight (its budget large): /health, a completion and a chat with another
    template all answered; the stop ends the render and answers it 503."""
    endless = Codec(tokenizer(ENDLESS), 100)
    with bench_serving(codec=endless, budget=RenderBudget(lines=10**12, seconds=HANG_S)) as (url, port, ex, service):

        async def main():
            async with httpx.AsyncClient(base_url=url, timeout=HANG_S) as h:
                body = {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
                hostile = asyncio.create_task(h.post("/v1/chat/completions", json=body))
                while service.rendering < 1:
                    await asyncio.sleep(0.02)
                assert (await h.get("/health")).json()["status"] == "ok"
                done = await h.post("/v1/completions", json={"model": "fake", "prompt": [5], "max_tokens": 3})
                assert done.status_code == 200
                service.codec = Codec(tokenizer(QUADRATIC), 100)  # the next chat meets a template that ends
                assert (await h.post("/v1/chat/completions", json=body)).status_code == 200
                assert service.rendering == 1  # the endless one still runs
                service.close()  # as a stop does
                return await hostile

        r = asyncio.run(main())
    assert r.status_code == 503 and r.json()["error"]["code"] == "server_stopping"


@pytest.mark.parametrize("template, code", [
    ("{{ raise_exception('roles must alternate') }}", "template_error"),
    ("{{ messages.__class__.__mro__ }}", "template_error"),  # the sandbox refuses
    ("{{ ''.__class__.__subclasses__() }}", "template_error"),
    ("{% for m in messages %}{{ m['content'] | nosuchfilter }}{% endfor %}", "template_syntax"),
])
def test_a_template_that_refuses_is_a_400_saying_why(template, code):
    with bench_serving(codec=Codec(tokenizer(template), 100), budget=BUDGET) as (url, *_):
        r = chat(url, "hello")
        assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
        served_meanwhile(url)


def test_the_budget_counts_lines_the_same_whatever_the_clock():
    codec = Codec(tokenizer(QUADRATIC), 100)
    with pytest.raises(TemplateRefused, match="20,000 lines"):
        codec.chat([("user", "x" * 100)], RenderBudget(lines=20_000, seconds=HANG_S))  # 10,000 iterations, ~3 lines each
    assert codec.chat([("user", "x" * 60)], RenderBudget(lines=20_000, seconds=HANG_S))  # 3,600: within
    assert bounded(lambda: sum(range(10**6)), RenderBudget(lines=1)) == sum(range(10**6))  # plain Python: not counted


@pytest.mark.parametrize("template", [ENDLESS, DOUBLING, "{% for m in messages %}{{ m['content'] }{% endfor %}"])
def test_a_checkpoint_whose_template_cannot_render_a_short_chat_is_refused_before_serving(template, tmp_path):
    from bench.core.errors import ConfigError

    with pytest.raises(ConfigError, match=f"the chat template of {tmp_path}"):
        check_chat_template(Codec(tokenizer(template), 100), str(tmp_path), BUDGET)
    check_chat_template(Codec(tokenizer(QUADRATIC), 100), str(tmp_path), BUDGET)
    check_chat_template(Codec(tokenizer("{{ raise_exception('a system message first') }}"), 100), "x", BUDGET)


def test_bench_serve_exits_2_naming_a_checkpoint_s_template_that_never_ends(tmp_path):
    from fakes import lively_tiny

    ckpt = tmp_path / "ckpt"
    lively_tiny().save_pretrained(ckpt, safe_serialization=True)
    tokenizer(ENDLESS).save_pretrained(ckpt)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-m", "bench", "serve", "--device", "cpu", "--model", str(ckpt), "--port",
                           "0"], capture_output=True, text=True, timeout=HANG_S, env=env)
    assert done.returncode == 2, done.stderr
    assert "chat template" in done.stderr and "ckpt" in done.stderr and "Traceback" not in done.stderr

