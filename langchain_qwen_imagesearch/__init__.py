"""Search by image with Qwen on Alibaba Cloud Model Studio, as LangChain building blocks."""
