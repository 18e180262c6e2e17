"""Channel types under the official 0.25 path ``iii.channel`` (sdk_surface.md §1e)."""

from .channels import Channel, ChannelReader, ChannelWriter, StreamChannelRef

__all__ = ["Channel", "ChannelReader", "ChannelWriter", "StreamChannelRef"]
