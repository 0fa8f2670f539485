"""The meaning descriptor: an ImageNet network's view of a picture (see ``encoder``)."""
