"""An admin change form and its parameters editor (django-jsonform) driven in a
real browser, as an operator does it: typing into the editor's fields (named
``rjf§<path>``), adding list items and map keys with its buttons, saving."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

__all__ = [
    "editor_add_item",
    "editor_add_key",
    "editor_choose",
    "editor_field",
    "editor_problem",
    "editor_type",
    "form_save",
]

EDITOR = "#id_params_jsonform"


def editor_problem(driver: WebDriver) -> str:
    """What is wrong with the editor on this page: its own error message, or data
    it never wrote (it did not run); "" when it drew the parameters."""
    text = str(driver.find_element(By.CSS_SELECTOR, EDITOR).text)
    if "(!) Error" in text:
        return text
    data = driver.find_element(By.ID, "id_params").get_attribute("value")
    return "" if data else "the editor wrote no data (it did not run)"


def editor_field(driver: WebDriver, *path: str | int) -> WebElement:
    """The editor's input, select or text box of the parameter at ``path``."""
    name = "§".join(["rjf", *(str(p) for p in path)])
    return driver.find_element(By.CSS_SELECTOR, f"{EDITOR} [name='{name}']")


def editor_type(driver: WebDriver, path: tuple[str | int, ...], text: str) -> None:
    """Replace the value at ``path`` by typing ``text``, as a user does (the
    editor hears each key; a value set by script it would not)."""
    field = editor_field(driver, *path)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(text)


def editor_choose(driver: WebDriver, path: tuple[str | int, ...], value: str) -> None:
    Select(editor_field(driver, *path)).select_by_value(value)


def _group_button(driver: WebDriver, title: str) -> WebElement:
    """The add button of the editor's group titled ``title`` (a list or a map)."""
    xpath = (
        f"//div[contains(@class, 'rjf-form-group-title')][normalize-space(text())='{title}']"
        "/../button[contains(@class, 'rjf-add-button')]"
    )
    return driver.find_element(By.CSS_SELECTOR, EDITOR).find_element(By.XPATH, "." + xpath)


def editor_add_item(driver: WebDriver, title: str) -> None:
    """Press "Add item" under the list titled ``title``."""
    _group_button(driver, title).click()


def editor_add_key(driver: WebDriver, title: str, key: str) -> None:
    """Press "Add key" under the map titled ``title`` and name the key in the
    browser's prompt."""
    _group_button(driver, title).click()
    prompt = WebDriverWait(driver, 10).until(expected_conditions.alert_is_present())
    prompt.send_keys(key)
    prompt.accept()


def form_save(driver: WebDriver, button: str = "_save") -> str:
    """Press Save (or ``_continue``: Save and continue editing), wait for the next
    page, and return its message (or the form's errors)."""
    element = driver.find_element(By.NAME, button)
    element.click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(element))
    notes = driver.find_elements(By.CSS_SELECTOR, ".messagelist, .errornote, .errorlist")
    return " | ".join(str(n.text) for n in notes)
