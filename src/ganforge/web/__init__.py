"""The pages `ganforge watch` serves (plain HTML and JavaScript shipped in the package: no CDN)."""
