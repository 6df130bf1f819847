from .spinenet import SpineNet

__all__ = ['SpineNet']
