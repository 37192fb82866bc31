"""Run exported generators with onnxruntime and numpy only. Nothing here imports TensorFlow."""
