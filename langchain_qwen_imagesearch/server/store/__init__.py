"""The store: catalog files on disk (one reader, one writer) and source-folder manifests."""
