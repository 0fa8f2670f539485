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
response = client.responses.create(
    model="qwen3.7-plus",
    input=[{"role": "user", "content": input_content}],
    tools=[
        {
            "type": "image_search"
        }
    ]
)
# Traverse the output to display each step
for item in response.output:
    if item.type == "image_search_call":
        print(f"[Tool Call] Search by image (status: {item.status})")
        # Parse and display the list of searched images
        if item.output:
            images = json.loads(item.output)
            print(f" Found {len(images)} images:")
            for img in images[:5]:  # Display the first 5 images
                print(f" [{img['index']}] {img['title']}")
                print(f" {img['url']}")
            if len(images) > 5:
                print(f" ... {len(images)} images in total")
    elif item.type == "message":
        print(f"\n[Model Response]")
        print(response.output_text)
# Display token usage and tool call statistics
print(f"\n[Token Usage] Input: {response.usage.input_tokens}, Output: {response.usage.output_tokens}, Total: {response.usage.total_tokens}")
if hasattr(response.usage, 'x_tools') and response.usage.x_tools:
    for tool_name, info in response.usage.x_tools.items():
        print(f"[Tool Statistics] {tool_name} call count: {info.get('count', 0)}")
