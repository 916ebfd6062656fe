"""The host link: UART framing, command engine and response encoder around a NetworkCore, as
stream-connected components (see :mod:`.top` for how they connect). docs/protocol.md is the spec;
:mod:`spikegate.model.link` the byte-level twins, block by block under the same names."""
from .answer import AnswerSource, Source
from .decoder import FrameDecoder, FrameDecoderSignature
from .encoder import ResponseEncoder, ResponseEncoderSignature
from .engine import CommandEngine, CommandEngineSignature
from .signatures import BufferRead, FrameInfo, ResponseInfo, RxEvents
from .status import StatusCounters
from .top import HostLink
from .write import WriteRules

__all__ = ["HostLink", "FrameDecoder", "FrameDecoderSignature", "CommandEngine", "CommandEngineSignature",
           "ResponseEncoder", "ResponseEncoderSignature", "WriteRules", "StatusCounters", "AnswerSource", "Source",
           "FrameInfo", "ResponseInfo", "RxEvents", "BufferRead"]
