"""The request's input images: data URLs decoded, http(s) URLs fetched safely, all decoded
within a pixel budget (docs/protocol.md#image-limits)."""
