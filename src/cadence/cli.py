"""``run-pipeline``: validate a config, inspect it, or run a conversation with it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from cadence.errors import CadenceError

EPILOG = """examples:
  run-pipeline configs/nova.yaml                       serve (OpenAI-compatible API on server.host:port)
  run-pipeline configs/nova.yaml --chat                talk by typing (one line = one turn)
  run-pipeline configs/nova.yaml --text "Hi Nova!" --output reply.wav
  run-pipeline configs/nova.yaml --input question.wav --output reply.wav
  run-pipeline configs/nova.yaml --check               validate only (exit 0/1)
  run-pipeline --schema > cadence.schema.json          JSON Schema for editors
  run-pipeline --list-processors
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run-pipeline",
        description="Run a Cadence voice pipeline declared in YAML.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", nargs="?", help="the pipeline's YAML config file")
    parser.add_argument("--check", action="store_true", help="validate the config and exit 0 (valid) or 1")
    parser.add_argument("--schema", action="store_true", help="print the JSON Schema of a config file")
    parser.add_argument("--list-processors", action="store_true", help="list processor types and exit")
    parser.add_argument("--host", help="override server.host")
    parser.add_argument("--port", type=int, help="override server.port")
    parser.add_argument("--chat", action="store_true", help="talk by typing in this terminal instead of serving")
    parser.add_argument("--input", metavar="WAV", help="speak the user's side from this audio file")
    parser.add_argument("--text", action="append", metavar="TEXT", help="a typed user turn (repeatable)")
    parser.add_argument("--user", metavar="ID", help="whose memory the conversation loads and keeps (file and chat"
                        " modes; the server takes ?user= per connection)")
    parser.add_argument("--output", metavar="WAV", help="write the reply audio to this WAV file")
    parser.add_argument("--pace", type=float, default=1.0, help="input speed: 1 = real time, 0 = as fast as possible")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pipecat's debug log")
    args = parser.parse_args(argv)
    if not (args.schema or args.list_processors) and not args.config:
        parser.error("the config file is required (e.g. run-pipeline configs/nova.yaml)")
    if args.input and args.text:
        parser.error("give either --input or --text, not both")
    if args.user and not (args.input or args.text or args.chat):
        parser.error("--user is for --input, --text and --chat; a server's clients name their user"
                     " per connection (?user=ID)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``run-pipeline`` console script."""
    args = parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return _main(args)
    except CadenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _main(args: argparse.Namespace) -> int:
    from cadence.config import default_registry, load_and_validate

    if args.list_processors:
        for spec in default_registry().all_specs():
            print(f"{spec.name:<12} {spec.description}" + ("" if spec.source == "built-in" else f"  [{spec.source}]"))
        return 0
    if args.schema:
        from cadence.pipelines.jsonschema import config_json_schema

        print(json.dumps(config_json_schema(default_registry()), indent=2))
        return 0

    config = load_and_validate(args.config)
    server = config.config.server
    if args.host:
        server.host = args.host
    if args.port is not None:
        if not 0 <= args.port <= 65535:
            print(f"error: --port must be 0-65535, got {args.port}", file=sys.stderr)
            return 1
        server.port = args.port
    if args.check:
        names = ", ".join(stage.spec.name for stage in config.stages)
        print(f"{args.config}: OK ({len(config.stages)} processors: {names}; server {server.host}:{server.port})")
        return 0
    if args.input or args.text or args.chat:
        return asyncio.run(_converse(args, config))
    return asyncio.run(_serve(config))


async def _serve(config) -> int:
    import uvicorn

    from cadence.config import tls_files
    from cadence.pipelines.builder import PipelineFactory
    from cadence.server import WS_MAX_QUEUE, WS_MAX_SIZE, WS_PROTOCOL, check_bind, create_app
    from cadence.serving import DrainingServer

    server_section = config.config.server
    check_bind(server_section.host, any(k.get_secret_value() for k in server_section.api_keys))
    factory = PipelineFactory(config)
    await factory.memory.open()  # a wrong store fails here, before anyone connects
    print("loading models ...", file=sys.stderr)
    await asyncio.to_thread(factory.prepare)
    tls = tls_files(config)
    app = create_app(factory)
    server = DrainingServer(uvicorn.Config(
        app, host=server_section.host, port=server_section.port, log_level="warning",
        timeout_graceful_shutdown=2,  # after the drain: what still hangs is cancelled
        # uvicorn's default (websockets' sans-I/O) crashes on a non-ASCII Sec-WebSocket-Protocol: no
        # answer, and a connection that blocks shutdown for ever. The websockets protocol answers 401.
        ws=WS_PROTOCOL, ws_max_size=WS_MAX_SIZE, ws_max_queue=WS_MAX_QUEUE,
        ws_per_message_deflate=server_section.ws_compression,
        ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None,
    ), app.state, drain_s=server_section.drain_s)
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    if server.started:
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        http, ws = ("https", "wss") if tls else ("http", "ws")
        print(f"serving on {http}://{host}:{port} (realtime: {ws}://{host}:{port}/v1/realtime;"
              " router: POST /v1/chat/completions, GET /v1/models; /metrics, /healthz)", flush=True)
    await serving
    return 0 if server.started else 1


async def _converse(args: argparse.Namespace, config) -> int:
    from cadence.pipelines.builder import PipelineFactory
    from cadence.transports.file import FileConversation, read_wav, write_wav

    audio = read_wav(args.input, config.config.transport.audio_in_sample_rate) if args.input else None
    if args.output:
        _check_writable(Path(args.output))
    factory = PipelineFactory(config)
    print("loading models ...", file=sys.stderr)
    await asyncio.to_thread(factory.prepare)

    def show(exchange) -> None:
        if exchange.user is not None:
            print(f"you:  {exchange.user}")
        print(f"bot:  {exchange.reply}{' [interrupted]' if exchange.interrupted else ''}", flush=True)

    conversation = FileConversation(factory, pace=args.pace, on_exchange=show, user=args.user)
    if audio is not None:
        result = await conversation.run_audio(audio)
    elif args.text:
        result = await conversation.run_text(args.text)
    else:
        print("type a line and press enter to talk; Ctrl-D ends", file=sys.stderr)
        result = await conversation.run_text(_stdin_lines())
    if args.output:
        write_wav(args.output, result.audio, result.sample_rate)
        print(f"wrote {args.output} ({len(result.audio) / 2 / result.sample_rate:.1f} s)", file=sys.stderr)
    if not [e for e in result.exchanges if e.user is not None] and (args.input or args.text):
        print("error: no user turn was heard (no speech found, or it transcribed to nothing)", file=sys.stderr)
        return 1
    return 0


async def _stdin_lines() -> AsyncIterator[str]:
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        if line.strip():
            yield line.strip()


def _check_writable(path: Path) -> None:
    from cadence.errors import InputError

    if not path.parent.exists():
        raise InputError(f"--output {path}: folder {path.parent} does not exist")


def _configure_logging(verbose: bool) -> None:
    import warnings

    from loguru import logger

    if not verbose:
        # pipecat flags its own deprecated paths loudly; they are not the user's to fix.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=ResourceWarning)
    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if verbose else "WARNING")


if __name__ == "__main__":
    sys.exit(main())
