import os
import json
from openai import OpenAI

client = OpenAI(
    # If you have not configured the environment variable, replace the following line with your Model Studio API key: api_key="sk-xxx",
    api_key=os.getenv("DASHSCOPE_API_KEY"),
    # Changed for the embedded server: the base URL comes from the environment.
    base_url=os.environ["DASHSCOPE_BASE_URL"],
)
input_content = [
    {"type": "input_text", "text": "Find landscape images with a style similar to this one"},
    # Changed for the embedded server: a data URL of a local photo.
    {"type": "input_image", "image_url": os.environ["SAMPLE_IMAGE_URL"]},
]
stream = client.responses.create(
    model="qwen3.7-plus",
    input=[{"role": "user", "content": input_content}],
    tools=[{"type": "image_search"}],
    stream=True
)
for event in stream:
    # Tool call starts
    if event.type == "response.output_item.added":
        if event.item.type == "image_search_call":
            print("[Tool Call] Searching by image...")
    # Tool call is complete. Parse and display the list of searched images.
    elif event.type == "response.output_item.done":
        if event.item.type == "image_search_call":
            print(f"[Tool Call] Search by image complete (status: {event.item.status})")
            if event.item.output:
                images = json.loads(event.item.output)
                print(f" Found {len(images)} images:")
                for img in images[:5]:  # Display the first 5 images
                    print(f" [{img['index']}] {img['title']}")
                    print(f" {img['url']}")
                if len(images) > 5:
                    print(f" ... {len(images)} images in total")
    # Model response starts
    elif event.type == "response.content_part.added":
        print(f"\n[Model Response]")
    # Streamed text output
    elif event.type == "response.output_text.delta":
        print(event.delta, end="", flush=True)
    # Response is complete. Output the usage.
    elif event.type == "response.completed":
        usage = event.response.usage
        print(f"\n\n[Token Usage] Input: {usage.input_tokens}, Output: {usage.output_tokens}, Total: {usage.total_tokens}")
        if hasattr(usage, 'x_tools') and usage.x_tools:
            for tool_name, info in usage.x_tools.items():
                print(f"[Tool Statistics] {tool_name} call count: {info.get('count', 0)}")
