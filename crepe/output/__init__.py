"""What a run leaves behind: the saved Hugging Face folder, its model card and its recipe."""
