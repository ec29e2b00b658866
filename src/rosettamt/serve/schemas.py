"""The API's request and response shapes, for validation (/v1) and for the OpenAPI page (/docs).

/translate reads JSON or form fields by hand (LibreTranslate clients send either), so its model
only documents; /v1/translate is validated by :class:`V1Request` (unknown fields refused, types
strict: a typo is a 400, not a silent default).
"""

from __future__ import annotations

from typing import List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr


class ErrorResponse(BaseModel):
    error: str = Field(description="one line saying what was wrong")


class LibreRequest(BaseModel):
    """LibreTranslate's POST /translate, as JSON or as form fields."""

    q: Union[str, List[str]] = Field(description="a text, or a list of texts (then the answer is a list)")
    source: Optional[str] = Field(None, description="the model's source language code, or auto (default)")
    target: Optional[str] = Field(None, description="the model's target language code (default); a multilingual "
                                                     "model takes any target /languages lists")
    format: Optional[str] = Field("text", description="text (html is not supported)")
    alternatives: Optional[int] = Field(0, description="how many alternative translations besides the best")
    api_key: Optional[str] = Field(None, description="needed when the server has serve.api_keys")


class LibreResponse(BaseModel):
    translatedText: Union[str, List[str]]
    alternatives: Optional[Union[List[str], List[List[str]]]] = None
    detectedLanguage: Optional[Union[dict, List[dict]]] = Field(
        None, description="with source=auto: {language, confidence}, each text's likeliest source language "
                          "among those the model translates into target (confidence in percent)")


class Language(BaseModel):
    code: str
    name: str
    targets: List[str]


class Detection(BaseModel):
    confidence: float = Field(description="in percent, over the model's languages")
    language: str = Field(description="one of the languages the model was trained on (POST /detect lists them "
                                      "all, likeliest first)")


class V1Request(BaseModel):
    """rosettamt's own API: search settings within the server's bounds, and the attention behind each line."""

    model_config = ConfigDict(extra="forbid")

    q: Union[StrictStr, List[StrictStr]] = Field(description="a text, or a list of texts (one line each "
                                                             "with attention)")
    beam_size: Optional[StrictInt] = Field(None, description="1..serve.max_beam_size (default: decode.beam_size)")
    nbest: StrictInt = Field(1, description="n-best list length, 1..serve.max_nbest (widens the beam to n)")
    length_penalty: Optional[Union[StrictFloat, StrictInt]] = Field(
        None, description="GNMT alpha within [serve.min_length_penalty, serve.max_length_penalty]")
    attention: StrictBool = Field(False, description="also return the pieces and every layer's cross-attention")
    source: Optional[StrictStr] = Field(None, description="source language (default: the model's; auto = any)")
    target: Optional[StrictStr] = Field(None, description="target language: a multilingual model translates into "
                                                           "any it knows (GET /languages); default: the model's")
    api_key: Optional[StrictStr] = None


class V1Candidate(BaseModel):
    text: str
    score: float = Field(description="the search's length-normalised log-probability; higher is better")
    target_pieces: Optional[List[str]] = Field(None, description="with attention: target pieces + </s>")
    attention: Optional[List[List[List[List[float]]]]] = Field(
        None, description="with attention: weights[layer][head][target piece][source piece]; rows sum to 1")


class V1Translation(BaseModel):
    text: str = Field(description="the best translation")
    score: float
    nbest: List[V1Candidate]
    source_pieces: Optional[List[str]] = Field(None, description="with attention: source pieces + </s>")
    detected_language: Optional[Detection] = Field(None, description="with source=auto: the likeliest source "
                                                                      "language, as /translate's detectedLanguage")


class V1Response(BaseModel):
    translations: List[V1Translation]
    settings: dict = Field(description="the search settings used (beam_size, nbest, length_penalty)")
    model: dict = Field(description="source, target, decoder_layers, heads, ...")
