"""Data shipped with rigcast (models, meshes, rigs); importable so installs can find it."""
