"""ming-imagegen: the image generator of Ming-Flash-Omni conditioned on a frozen LLM (paper §2.3, §2.4)."""

__all__: list[str] = []
