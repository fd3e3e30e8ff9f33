"""Last-position logits of a prompt from Hugging Face transformers (an implementation nobody here
wrote), for the engine's comparison test. Usage: hf_logits.py MODEL_DIR OUT_FILE id,id,...
Writes float32 little-endian logits [vocab]. Exit 3 when torch / transformers are missing."""
import sys

try:
    import torch
    import transformers
except ImportError as e:  # the test turns this into a skip with the reason
    print(f"missing: {e}", file=sys.stderr)
    sys.exit(3)


def main():
    model_dir, out_file, ids = sys.argv[1], sys.argv[2], sys.argv[3]
    tokens = [int(t) for t in ids.split(",")]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.bfloat16, attn_implementation="eager").to(device)
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor([tokens], device=device))
    logits = out.logits[0, -1].float().cpu().numpy()
    logits.astype("<f4").tofile(out_file)
    print(f"transformers {transformers.__version__} torch {torch.__version__} {device}")


main()
