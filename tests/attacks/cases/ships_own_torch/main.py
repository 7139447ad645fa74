import torch

answer = 42
