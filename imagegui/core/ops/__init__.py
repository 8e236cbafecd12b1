"""Operations as plans: guards, preview, run with progress, undo journal."""
