"""Reusable widgets: big buttons, labelled fields with their error, choice groups, the status bars."""
from .common import BigButton, Choice, ChoiceGroup, FormField, Heading, InfoCard, Input, Notice, Para, SitePicker, TopBar

__all__ = ["BigButton", "Choice", "ChoiceGroup", "FormField", "Heading", "InfoCard", "Input", "Notice", "Para", "SitePicker", "TopBar"]
